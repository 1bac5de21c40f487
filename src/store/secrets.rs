//! Sealed secrets (see `crate::secrets`), written once for both databases.

use super::Store;
use super::records::StoredSecret;
use super::sql::{Row, query};
use anyhow::Result;

const COLUMNS: &str = "name, key_id, nonce, sealed, created_us, updated_us";

fn secret_from_row(row: &Row) -> Result<StoredSecret> {
    Ok(StoredSecret {
        name: row.get(0)?,
        key_id: row.get(1)?,
        nonce: row.get(2)?,
        sealed: row.get(3)?,
        created_us: row.get(4)?,
        updated_us: row.get(5)?,
    })
}

impl Store {
    /// Store (or replace) a sealed secret; replacing keeps when it was created.
    pub async fn save_secret(&self, secret: StoredSecret) -> Result<()> {
        let save = query!(
            "INSERT INTO secrets (name, key_id, nonce, sealed, created_us, updated_us) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (name) DO UPDATE SET key_id = excluded.key_id, nonce = excluded.nonce,
                                              sealed = excluded.sealed, updated_us = excluded.updated_us",
            secret.name,
            secret.key_id,
            secret.nonce,
            secret.sealed,
            secret.created_us,
            secret.updated_us,
        );
        self.execute(save).await?;
        Ok(())
    }

    pub async fn secrets(&self) -> Result<Vec<StoredSecret>> {
        let rows = self.rows(query!(format!("SELECT {COLUMNS} FROM secrets ORDER BY name"))).await?;
        rows.iter().map(secret_from_row).collect()
    }

    pub async fn secret(&self, name: &str) -> Result<Option<StoredSecret>> {
        let row = self.row(query!(format!("SELECT {COLUMNS} FROM secrets WHERE name = $1"), name)).await?;
        row.as_ref().map(secret_from_row).transpose()
    }

    /// Returns whether there was such a secret.
    pub async fn remove_secret(&self, name: &str) -> Result<bool> {
        Ok(self.execute(query!("DELETE FROM secrets WHERE name = $1", name)).await? > 0)
    }
}
