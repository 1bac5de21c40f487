//! The run's journal: every answer the host gives each instance of a run —
//! service results, subflow outputs, clock reads, random bytes, sleeps — in
//! order, in the store, on either database; and the `Idempotency-Key` each
//! service call carries.

use super::server_support::Server;
use super::services::{Killed, spawn_service};
use crate::on_both_backends;
use serde_json::{Value, json};

const HEADERS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/services/headers.py");

const FLOW: &str = r#"
import random
import time
import uuid

from hero_logic import flow, services


@flow(name="callee", inputs={"n": "integer"})
def callee(n):
    return {"n": n, "at": time.time()}


@flow(name="journaled", services=["echo"])
def journaled():
    at = time.time()
    r = random.random()
    u = uuid.uuid4().hex
    time.sleep(0.05)
    first = services.echo.received()["headers"].get("idempotency-key")
    both = services.gather(services.echo.received.request(), services.echo.received.request())
    keys = [answer["headers"].get("idempotency-key") for answer in both]
    sub = flow.invoke("callee", n=7)
    return {"at": at, "random": r, "uuid": u, "keys": [first] + keys, "sub": sub}
"#;

/// The first `len` bytes of the ChaCha20 stream a journaled seed keys.
fn keystream(seed_hex: &str, len: usize) -> Vec<u8> {
    use chacha20::cipher::{KeyIvInit, StreamCipher};
    let seed: Vec<u8> = (0..32).map(|i| u8::from_str_radix(&seed_hex[2 * i..2 * i + 2], 16).unwrap()).collect();
    let mut stream = vec![0u8; len];
    let key: [u8; 32] = seed.try_into().unwrap();
    chacha20::ChaCha20::new(&key.into(), &[0u8; 12].into()).apply_keystream(&mut stream);
    stream
}

fn of_kind<'a>(entries: &'a [Value], stream: &str, kind: &str) -> Vec<&'a Value> {
    entries.iter().filter(|e| e["stream"] == stream && e["entry"]["kind"] == kind).collect()
}

on_both_backends! {
    #[test]
    fn every_answer_the_host_gives_is_journaled_in_order_with_its_call_key() {
        let server = Server::start(&[]);
        let (child, url) = spawn_service(HEADERS, &["--port", "0"], &[]);
        let _service = Killed(child);
        assert_eq!(server.post_json("/api/services", &json!({"name": "echo", "url": url})).status, 201);
        let run = server.run_wait(json!({"source": FLOW, "flow": "journaled"}));
        assert_eq!(run["status"], "ok", "{run}");
        let run_id = run["run_id"].as_str().unwrap();
        let output = &run["output"];
        let journal = server.get(&format!("/api/runs/{run_id}/journal")).json();
        let entries = journal["entries"].as_array().unwrap().clone();

        // Each stream numbered from 0 without a gap: the order the instance was answered in.
        for stream in ["0", "0.0"] {
            let indexes: Vec<u64> =
                entries.iter().filter(|e| e["stream"] == stream).map(|e| e["index"].as_u64().unwrap()).collect();
            assert_eq!(indexes, (0..indexes.len() as u64).collect::<Vec<_>>(), "stream {stream}");
        }
        // The clock the flow read is the one journaled.
        let wall = of_kind(&entries, "0", "wall_clock");
        let read = wall[0]["entry"]["seconds"].as_f64().unwrap() + wall[0]["entry"]["nanoseconds"].as_f64().unwrap() / 1e9;
        assert!((read - output["at"].as_f64().unwrap()).abs() < 1e-6, "{read} {}", output["at"]);
        // Every random byte comes from the one seed the journal keeps: uuid4
        // is 16 of them (its version and variant bits set) from that stream.
        let seeds = of_kind(&entries, "0", "random_seed");
        assert_eq!(seeds.len(), 1, "{seeds:?}");
        let stream = keystream(seeds[0]["entry"]["hex"].as_str().unwrap(), 8192);
        let uuid = output["uuid"].as_str().unwrap();
        let uuid: Vec<u8> = (0..16).map(|i| u8::from_str_radix(&uuid[2 * i..2 * i + 2], 16).unwrap()).collect();
        let same_bits = |window: &[u8]| window[..6] == uuid[..6] && window[7] == uuid[7] && window[9..] == uuid[9..];
        assert!(stream.windows(16).any(same_bits), "the uuid's bytes are in the seed's stream");
        let sleeps = of_kind(&entries, "0", "sleep");
        assert!(sleeps.iter().any(|e| (40_000_000..=50_000_000).contains(&e["entry"]["ns"].as_u64().unwrap())), "{sleeps:?}");

        // Three service calls, each with its result and a key naming its place.
        let calls = of_kind(&entries, "0", "rpc");
        assert_eq!(calls.len(), 3, "{calls:?}");
        let keys: Vec<String> = calls.iter().map(|e| format!("{run_id}/0/{}", e["index"])).collect();
        assert_eq!(output["keys"], json!(keys), "each call's Idempotency-Key is its place in the journal");
        for call in &calls {
            assert_eq!(call["entry"]["call"], "echo.received");
            let headers = &call["entry"]["outcome"]["ok"]["headers"];
            assert!(headers["idempotency-key"].as_str().unwrap().starts_with(run_id), "{call}");
        }

        // The subflow: its answer in the caller's stream, its own reads in its own.
        let subflow = of_kind(&entries, "0", "subflow");
        assert_eq!(subflow.len(), 1);
        assert_eq!(subflow[0]["entry"]["flow"], "callee");
        let answered: Value = serde_json::from_str(subflow[0]["entry"]["outcome"]["Ok"].as_str().unwrap()).unwrap();
        assert_eq!(answered, output["sub"]);
        assert_eq!(of_kind(&entries, "0.0", "wall_clock").len(), 1, "the subflow's own clock read");

        let bytes = journal["journal_bytes"].as_u64().unwrap();
        assert_eq!(run["usage"]["journal_bytes"].as_u64(), Some(bytes));
        assert!(bytes as usize > entries.len() * 20, "{bytes} bytes for {} entries", entries.len());
        assert_eq!(server.get("/api/runs/nope/journal").status, 404);
    }

    #[test]
    fn a_run_past_its_journal_quota_ends_quota_exceeded() {
        let server = Server::start(&[]);
        let source = "import time\nfrom hero_logic import flow\n\n@flow\ndef clocks():\n    for _ in range(1000):\n        time.time()\n";
        let run = server.run_wait(json!({"source": source, "quotas": {"journal_bytes": 4096}}));
        assert_eq!((run["status"].clone(), run["error"]["quota"].clone()), (json!("quota_exceeded"), json!("journal_bytes")), "{run}");
        assert!(run["usage"]["journal_bytes"].as_u64().unwrap() <= 4096, "{run}");
    }

    /// The answer a run ran out of journal on was never written; its
    /// replay stops at that place as the original did, on the same quota,
    /// not as a divergence.
    #[test]
    fn a_replay_of_a_run_that_filled_its_journal_ends_on_the_same_quota() {
        let server = Server::start(&[]);
        let source = "import time\nfrom hero_logic import flow\n\n@flow\ndef clocks():\n    for _ in range(1000):\n        time.time()\n";
        let run = server.run_wait(json!({"source": source, "quotas": {"journal_bytes": 4096}}));
        assert_eq!(run["status"], "quota_exceeded", "{run}");
        let run_id = run["run_id"].as_str().unwrap();
        let replay = server.post_json(&format!("/api/runs/{run_id}/replay?wait=true"), &json!({}));
        assert_eq!(replay.status, 200, "{}", replay.text());
        let replay = replay.json();
        let ending = |run: &Value| (run["status"].clone(), run["error"]["type"].clone(), run["error"]["quota"].clone(), run["error"]["limit"].clone());
        assert_eq!(ending(&replay), ending(&run), "{replay}");
        assert_eq!(ending(&run), (json!("quota_exceeded"), json!("QuotaExceeded"), json!("journal_bytes"), json!(4096)));
        assert_eq!(replay["usage"]["journal_bytes"], run["usage"]["journal_bytes"], "the same answers journaled again");
    }
}

const TRACED: &str = r#"
from hero_logic import flow, services


@flow(name="traced", services=["echo"])
def traced():
    with flow.step("ask"):
        return services.echo.received()["headers"].get("traceparent")
"#;

mod trace_context {
    use super::*;

    on_both_backends! {
        /// A service call carries W3C trace context: the run's trace id and the
        /// call's own span as parent, the ids the run's OTLP export gives, so
        /// what the service records joins the run's trace under the call.
        #[test]
        fn a_service_call_carries_the_runs_trace_with_its_span_as_parent() {
            let server = Server::start(&[]);
            let (child, url) = spawn_service(HEADERS, &["--port", "0"], &[]);
            let _service = Killed(child);
            let registered = server.post_json(
                "/api/services",
                &json!({"name": "echo", "url": url, "headers": {"traceparent": "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01"}}),
            );
            assert_eq!(registered.status, 201, "{}", registered.text());
            let run = server.run_wait(json!({"source": TRACED}));
            assert_eq!(run["status"], "ok", "{run}");
            let parent = run["output"].as_str().expect("a traceparent was sent").to_string();

            let otlp = server.get(&format!("/api/runs/{}/otlp", run["run_id"].as_str().unwrap())).json();
            let spans = otlp["resourceSpans"][0]["scopeSpans"][0]["spans"].as_array().unwrap().clone();
            let call = spans.iter().find(|span| span["name"] == "echo.received").expect("the call's span");
            let expected = format!("00-{}-{}-01", call["traceId"].as_str().unwrap(), call["spanId"].as_str().unwrap());
            assert_eq!(parent, expected, "the host's, not the one the service was registered with");
        }
    }
}
