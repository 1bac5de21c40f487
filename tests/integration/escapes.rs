//! Escapes tried from inside the sandbox, each refused. The import guard is
//! not the wall: these reach `os` through a module that imported it and try
//! the operations themselves.

use super::support::run_json;
use serde_json::{Value, json};

const ESCAPES: &str = r#"
import random
from hero_logic import flow

os = random._os  # reached without an import statement
sys = os.sys


def attempt(fn):
    try:
        return {"ok": True, "value": repr(fn())[:300]}
    except BaseException as e:
        return {"ok": False, "error": type(e).__name__, "message": str(e)[:300]}


def import_(name):
    def go():
        exec(f"import {name}", {"__name__": "__flow__"})
    return go


@flow()
def escape():
    r = {}
    r["read_host_file"] = attempt(lambda: open("/etc/passwd").read())
    r["write_host_file"] = attempt(lambda: open("/tmp/hero_logic_escape", "w").write("x"))
    r["list_root"] = attempt(lambda: os.listdir("/"))
    r["list_cwd"] = attempt(lambda: os.listdir("."))
    r["environ"] = dict(os.environ)
    r["argv"] = list(sys.argv)
    for name in ["socket", "subprocess", "threading", "ctypes", "os", "sys", "importlib", "_socket", "_thread"]:
        r["import_" + name] = attempt(import_(name))
    r["loaded_socket"] = [m for m in ("socket", "_socket", "_ctypes", "ctypes", "subprocess", "_posixsubprocess", "threading") if m in sys.modules]
    r["thread"] = attempt(lambda: sys.modules["_thread"].start_new_thread(lambda: None, ()))
    r["system"] = attempt(lambda: os.system("true"))
    r["fork"] = attempt(lambda: os.fork())
    r["dunder_import_os"] = attempt(lambda: __import__("socket"))
    return r
"#;

fn refused(outcome: &Value, error: &str) {
    assert_eq!(outcome["ok"], false, "{outcome}");
    assert_eq!(outcome["error"], error, "{outcome}");
}

#[test]
fn escapes_are_refused() {
    let marker = std::path::Path::new("/tmp/hero_logic_escape");
    let _ = std::fs::remove_file(marker);
    let (code, report) = run_json(ESCAPES, &[]);
    assert_eq!(code, 0, "{report:#}");
    let r = &report["output"];

    // Host files: no directory is preopened, so no path names anything.
    refused(&r["read_host_file"], "FileNotFoundError");
    refused(&r["write_host_file"], "FileNotFoundError");
    assert!(!marker.exists(), "the guest wrote a file on the host");
    refused(&r["list_root"], "FileNotFoundError");
    refused(&r["list_cwd"], "FileNotFoundError");

    // Environment and arguments are empty.
    assert_eq!(r["environ"], json!({}));
    assert_eq!(r["argv"], json!([]));

    // Processes and threads do not exist in the guest.
    refused(&r["system"], "AttributeError");
    refused(&r["fork"], "AttributeError");
    refused(&r["thread"], "RuntimeError");

    // Sockets, ctypes, subprocess and threading are not in the image at all.
    assert_eq!(r["loaded_socket"], json!([]));
    refused(&r["dunder_import_os"], "ModuleNotFoundError");
    for name in ["socket", "subprocess", "threading", "ctypes", "os", "sys", "importlib", "_socket", "_thread"] {
        let outcome = &r[format!("import_{name}")];
        refused(outcome, "ModuleNotFoundError");
        let message = outcome["message"].as_str().unwrap();
        assert!(message.contains("not available in the hero_logic sandbox"), "{message}");
    }
}
