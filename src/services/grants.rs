//! What the built-in services let a flow do beyond its own things.
//!
//! By default a flow reads the runs of its own flow only (`runs.*`), and
//! `flows.save` may add new flows and replace flows it stored itself, never
//! a built-in or a flow stored by the operator. The operator widens that per
//! flow with `serve --grant FLOW=CAPABILITY`; the built-in `optimize_flow`,
//! whose job is reading other flows' runs, holds `runs.read_any` by default.

use std::collections::{HashMap, HashSet};

/// A power beyond the default, granted to a flow by name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    /// `runs.recent`, `runs.subflows`, `runs.spans` for any flow's runs.
    RunsReadAny,
    /// `flows.save` may replace any flow, built-ins included.
    FlowsSaveAny,
}

impl Capability {
    pub const ALL: [Capability; 2] = [Capability::RunsReadAny, Capability::FlowsSaveAny];

    pub fn name(self) -> &'static str {
        match self {
            Capability::RunsReadAny => "runs.read_any",
            Capability::FlowsSaveAny => "flows.save_any",
        }
    }
}

/// Which flows hold which capabilities.
#[derive(Clone, Debug)]
pub struct Grants {
    by_flow: HashMap<String, HashSet<Capability>>,
}

impl Default for Grants {
    /// The built-in flows' own grants.
    fn default() -> Grants {
        let mut grants = Grants { by_flow: HashMap::new() };
        grants.grant("optimize_flow", Capability::RunsReadAny);
        grants
    }
}

impl Grants {
    pub fn grant(&mut self, flow: &str, capability: Capability) {
        self.by_flow.entry(flow.to_string()).or_default().insert(capability);
    }

    pub fn allows(&self, flow: &str, capability: Capability) -> bool {
        self.by_flow.get(flow).is_some_and(|held| held.contains(&capability))
    }

    /// Read `FLOW=CAPABILITY`, as `--grant` takes it.
    pub fn parse_grant(text: &str) -> Result<(String, Capability), String> {
        let names = Capability::ALL.map(Capability::name).join(", ");
        let (flow, capability) = text
            .split_once('=')
            .ok_or_else(|| format!("--grant takes FLOW=CAPABILITY (capabilities: {names}), not '{text}'"))?;
        let capability = Capability::ALL
            .into_iter()
            .find(|c| c.name() == capability)
            .ok_or_else(|| format!("--grant: unknown capability '{capability}' (capabilities: {names})"))?;
        if flow.is_empty() {
            return Err(format!("--grant: '{text}' names no flow"));
        }
        Ok((flow.to_string(), capability))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grants_by_flow() {
        let mut grants = Grants::default();
        assert!(grants.allows("optimize_flow", Capability::RunsReadAny));
        assert!(!grants.allows("optimize_flow", Capability::FlowsSaveAny));
        assert!(!grants.allows("mine", Capability::RunsReadAny));
        let (flow, capability) = Grants::parse_grant("mine=flows.save_any").unwrap();
        grants.grant(&flow, capability);
        assert!(grants.allows("mine", Capability::FlowsSaveAny));
        assert!(Grants::parse_grant("mine").is_err());
        assert!(Grants::parse_grant("mine=root").unwrap_err().contains("runs.read_any, flows.save_any"));
        assert!(Grants::parse_grant("=runs.read_any").is_err());
    }
}
