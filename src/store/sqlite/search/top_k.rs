//! The best k flows for a planned query, without scoring every flow that
//! matches. Each term's postings are read best impact first, the list that
//! can still add most to a score first; reading stops once neither a flow
//! not yet seen nor a seen one outside the best k can overtake the k-th
//! (Fagin's threshold algorithm, without random access while reading). The
//! k found are then scored exactly, reading the postings of each.

use super::bm25::{SATURATED, impact_bound, saturation};
use super::plan::Plan;
use rusqlite::{Connection, OptionalExtension};
use std::collections::HashMap;

/// Postings read from one list before choosing the list to read again.
const BATCH: usize = 64;
/// Postings read in all before answering with the best found so far: a
/// query of several words that are each in most flows could otherwise read
/// them all. Past it the answer is close, not proven.
const MOST_POSTINGS: usize = 10_000;
/// Flows scored exactly when reading stopped at `MOST_POSTINGS`: this many
/// best by what is read of them, and as many whose score may be highest.
const RESCORED_WHEN_UNSETTLED: usize = 100;

/// A flow of the answer, with its BM25 score (higher is better).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Ranked {
    pub flow_id: i64,
    pub score: f64,
}

pub fn best_flows(conn: &Connection, plan: &Plan, k: usize) -> rusqlite::Result<Vec<Ranked>> {
    if k == 0 || plan.terms.is_empty() || plan.library.flows == 0 {
        return Ok(Vec::new());
    }
    let mut reading = Reading::new(plan);
    let mut statements = plan
        .terms
        .iter()
        .map(|_| {
            conn.prepare_cached(
                "SELECT flow_id, freq, tokens, impact FROM search_postings
                 WHERE term_id = ?1 ORDER BY impact DESC, flow_id",
            )
        })
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut lists =
        statements.iter_mut().zip(&plan.terms).map(|(s, id)| s.query([id])).collect::<Result<Vec<_>, _>>()?;
    let mut next_check = BATCH;
    let best = loop {
        let Some(list) = reading.most_promising_list() else { break reading.best_by_lower(k) };
        for _ in 0..BATCH {
            match lists[list].next()? {
                Some(row) => reading.add(list, row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?),
                None => {
                    reading.exhausted(list);
                    break;
                }
            }
        }
        if reading.postings_read >= next_check {
            if let Some(best) = reading.settled(k) {
                break best;
            }
            next_check = reading.postings_read + BATCH.max(reading.postings_read / 4);
        }
        if reading.postings_read >= MOST_POSTINGS {
            break reading.most_likely(k);
        }
    };
    drop(lists);
    drop(statements);
    reading.scored_exactly(conn, best, k)
}

/// What has been read of the postings lists so far.
struct Reading<'p> {
    plan: &'p Plan,
    /// The average flow length scores are computed with: the one the
    /// stored impacts were, so an impact read bounds what a posting adds.
    average_tokens: f64,
    /// For each list, the phrases its term is part of, and the sum of their
    /// IDFs (what a posting of it can add to a score, per unit of impact).
    list_phrases: Vec<Vec<usize>>,
    list_weight: Vec<f64>,
    /// For each list, the most a posting not read yet can stand for (0 once
    /// read to the end).
    threshold: Vec<f64>,
    slot_of: HashMap<i64, usize>,
    seen: Vec<SeenFlow>,
    /// Weighted frequency read so far, per seen flow and phrase.
    freq: Vec<f64>,
    postings_read: usize,
}

struct SeenFlow {
    flow_id: i64,
    tokens: f64,
    /// One bit per list whose posting for this flow has been read.
    read_in: u64,
    /// Its score from what has been read: a lower bound of its score.
    lower: f64,
}

impl<'p> Reading<'p> {
    fn new(plan: &'p Plan) -> Reading<'p> {
        let average_tokens = plan.library.reference_tokens;
        let mut list_phrases = vec![Vec::new(); plan.terms.len()];
        let mut list_weight = vec![0.0; plan.terms.len()];
        for (index, phrase) in plan.phrases.iter().enumerate() {
            for &list in &phrase.terms {
                list_phrases[list].push(index);
                list_weight[list] += phrase.idf;
            }
        }
        Reading {
            plan,
            average_tokens,
            list_phrases,
            list_weight,
            threshold: vec![SATURATED; plan.terms.len()],
            slot_of: HashMap::new(),
            seen: Vec::new(),
            freq: Vec::new(),
            postings_read: 0,
        }
    }

    fn most_promising_list(&self) -> Option<usize> {
        (0..self.threshold.len()).filter(|&list| self.threshold[list] > 0.0).max_by(|&a, &b| {
            (self.list_weight[a] * self.threshold[a]).total_cmp(&(self.list_weight[b] * self.threshold[b]))
        })
    }

    fn add(&mut self, list: usize, flow_id: i64, freq: f64, tokens: i64, impact: i64) {
        self.postings_read += 1;
        self.threshold[list] = impact_bound(impact);
        let phrases = self.plan.phrases.len();
        let slot = *self.slot_of.entry(flow_id).or_insert_with(|| {
            self.seen.push(SeenFlow { flow_id, tokens: tokens as f64, read_in: 0, lower: 0.0 });
            self.freq.resize(self.freq.len() + phrases, 0.0);
            self.seen.len() - 1
        });
        let flow = &mut self.seen[slot];
        flow.read_in |= 1 << list;
        for &phrase in &self.list_phrases[list] {
            let sum = &mut self.freq[slot * phrases + phrase];
            let before = saturation(*sum, flow.tokens, self.average_tokens);
            *sum += freq;
            let after = saturation(*sum, flow.tokens, self.average_tokens);
            flow.lower += self.plan.phrases[phrase].idf * (after - before);
        }
    }

    fn exhausted(&mut self, list: usize) {
        self.threshold[list] = 0.0;
    }

    /// The most a flow not seen in any list could score.
    fn unseen_bound(&self) -> f64 {
        self.plan
            .phrases
            .iter()
            .map(|phrase| {
                let open: f64 = phrase.terms.iter().map(|&list| self.threshold[list]).sum();
                phrase.idf * SATURATED.min(open)
            })
            .sum()
    }

    /// The most a seen flow could score: what is read of it, plus for each
    /// list not read for it yet, the most that list may still hold (a
    /// saturation of a sum is at most the sum of saturations).
    fn upper(&self, slot: usize) -> f64 {
        let flow = &self.seen[slot];
        let phrases = self.plan.phrases.len();
        self.plan
            .phrases
            .iter()
            .enumerate()
            .map(|(index, phrase)| {
                let read = saturation(self.freq[slot * phrases + index], flow.tokens, self.average_tokens);
                let open: f64 = phrase
                    .terms
                    .iter()
                    .filter(|&&list| flow.read_in & (1 << list) == 0)
                    .map(|&list| self.threshold[list])
                    .sum();
                phrase.idf * SATURATED.min(read + open)
            })
            .sum()
    }

    /// Seen flows, best lower bound first (the first k sorted, the rest not).
    fn by_lower(&self, k: usize) -> Vec<usize> {
        let mut slots: Vec<usize> = (0..self.seen.len()).collect();
        // Among equal scores the lowest flow id first, as FTS5 orders them
        // (and as a list holds equal impacts).
        let order = |a: &usize, b: &usize| {
            let (a, b) = (&self.seen[*a], &self.seen[*b]);
            b.lower.total_cmp(&a.lower).then(a.flow_id.cmp(&b.flow_id))
        };
        if slots.len() > k {
            slots.select_nth_unstable_by(k - 1, order);
        }
        slots
    }

    fn best_by_lower(&self, k: usize) -> Vec<usize> {
        let mut slots = self.by_lower(k);
        slots.truncate(k);
        slots
    }

    /// The best k, once no other flow, seen or not, can overtake them.
    fn settled(&self, k: usize) -> Option<Vec<usize>> {
        if self.seen.len() < k {
            return None;
        }
        let slots = self.by_lower(k);
        let kth = slots[..k].iter().map(|&slot| self.seen[slot].lower).fold(f64::INFINITY, f64::min);
        if self.unseen_bound() > kth || slots[k..].iter().any(|&slot| self.upper(slot) > kth) {
            return None;
        }
        Some(slots[..k].to_vec())
    }

    /// When reading stops unsettled: the flows best by what is read of
    /// them, and the ones that could score highest.
    fn most_likely(&self, k: usize) -> Vec<usize> {
        let mut candidates = self.by_lower(RESCORED_WHEN_UNSETTLED.max(k));
        candidates.truncate(RESCORED_WHEN_UNSETTLED.max(k));
        let mut by_upper: Vec<(f64, usize)> = (0..self.seen.len()).map(|slot| (self.upper(slot), slot)).collect();
        let keep = RESCORED_WHEN_UNSETTLED.min(by_upper.len());
        if keep > 0 && keep < by_upper.len() {
            by_upper.select_nth_unstable_by(keep - 1, |a, b| b.0.total_cmp(&a.0));
        }
        candidates.extend(by_upper[..keep].iter().map(|&(_, slot)| slot));
        candidates.sort_unstable();
        candidates.dedup();
        candidates
    }

    /// The exact scores of `candidates`, best first, the best k: a flow's
    /// postings in the lists not read to it yet are looked up one by one.
    fn scored_exactly(&self, conn: &Connection, candidates: Vec<usize>, k: usize) -> rusqlite::Result<Vec<Ranked>> {
        let mut posting =
            conn.prepare_cached("SELECT freq FROM search_postings WHERE flow_id = ?1 AND term_id = ?2")?;
        let phrases = self.plan.phrases.len();
        let mut ranked = Vec::with_capacity(candidates.len());
        for slot in candidates {
            let flow = &self.seen[slot];
            let mut freq = self.freq[slot * phrases..(slot + 1) * phrases].to_vec();
            for (list, &term_id) in self.plan.terms.iter().enumerate() {
                if self.threshold[list] == 0.0 || flow.read_in & (1 << list) != 0 {
                    continue;
                }
                let held: Option<f64> = posting.query_row([flow.flow_id, term_id], |row| row.get(0)).optional()?;
                for &phrase in &self.list_phrases[list] {
                    freq[phrase] += held.unwrap_or(0.0);
                }
            }
            ranked.push(Ranked { flow_id: flow.flow_id, score: self.score(&freq, flow.tokens) });
        }
        ranked.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.flow_id.cmp(&b.flow_id)));
        ranked.truncate(k);
        Ok(ranked)
    }

    fn score(&self, freq: &[f64], tokens: f64) -> f64 {
        self.plan
            .phrases
            .iter()
            .zip(freq)
            .map(|(phrase, &freq)| phrase.idf * saturation(freq, tokens, self.average_tokens))
            .sum()
    }
}
