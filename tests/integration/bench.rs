//! The benchmark harness runs, in its short mode, and reports every figure.
//! Its numbers are not judged here: figures come from the benchmark itself.

use super::support::hero_logic;

#[test]
fn bench_quick_prints_a_table_and_a_json_line_with_every_figure() {
    let output = hero_logic().args(["bench", "--quick"]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("trivial flow p50, fresh sandbox"), "{stdout}");
    let last = stdout.lines().last().unwrap();
    let figures: serde_json::Value = serde_json::from_str(last).expect("the last line is JSON");
    let figures = &figures["bench"];
    for key in [
        "trivial_p50_ms",
        "trivial_p99_ms",
        "trivial_runs_per_s_1",
        "trivial_runs_per_s_n",
        "pss_per_live_run_mib",
        "spans_recorded_per_s",
        "spans_stored_per_s",
        "span_to_ws_p50_ms",
        "rpc_direct_ms",
        "rpc_from_flow_ms",
        "cpu_loop_sandbox_s",
        "cold_start_no_cache_ms",
        "cold_start_cached_ms",
        "server_flow_wait_p50_ms",
        "server_runs_per_s_4_clients",
        "waiting_all_ended_s",
        "waiting_peak_rss_mib",
    ] {
        assert!(figures[key].as_f64().is_some_and(|v| v > 0.0), "{key} missing or zero in {figures}");
    }
    assert_eq!(figures["quick"], true);
}

/// `bench --quick --only SECTION`: its figures, which must hold `present`
/// (each above zero) and none of `absent`.
fn bench_section(section: &str, present: &[&str], absent: &[&str]) {
    let output = hero_logic().args(["bench", "--quick", "--only", section]).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    let figures: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).expect("JSON last line");
    let figures = figures["bench"].as_object().unwrap();
    for key in present {
        assert!(
            figures.get(*key).and_then(|v| v.as_f64()).is_some_and(|v| v > 0.0),
            "{key} missing or zero in {figures:?}"
        );
    }
    for key in absent {
        assert!(!figures.contains_key(*key), "--only {section} measured {key} too: {figures:?}");
    }
}

#[test]
fn bench_only_spans_reports_the_span_path_alone() {
    let present = ["spans_recorded_per_s", "spans_stored_per_s", "spans_stored_over_recorded", "span_to_ws_p99_ms"];
    bench_section("spans", &present, &["trivial_p50_ms"]);
}

#[test]
fn bench_only_runs_reports_the_trivial_runs_alone() {
    let present = ["trivial_p50_ms", "trivial_runs_per_s_1", "trivial_runs_per_s_n", "native_over_sandbox_p50"];
    bench_section("runs", &present, &["spans_recorded_per_s", "search_p50_ms"]);
}

#[test]
fn bench_only_server_reports_the_server_path_alone() {
    let present = [
        "server_flow_in_process_p50_ms",
        "server_flow_wait_p50_ms",
        "server_over_in_process_p50",
        "server_runs_per_s_4_clients",
    ];
    bench_section("server", &present, &["trivial_p50_ms", "search_p50_ms"]);
}

#[test]
fn bench_only_waiting_reports_runs_waiting_at_once_alone() {
    let present =
        ["waiting_all_ended_s", "waiting_runs", "waiting_peak_rss_mib", "waiting_peak_pss_mib", "waiting_idle_rss_mib"];
    bench_section("waiting", &present, &["trivial_p50_ms", "server_runs_per_s_4_clients"]);
}

#[test]
fn bench_only_cli_reports_the_command_line_against_python_per_process() {
    let present = ["cold_start_no_cache_ms", "cold_start_cached_ms", "cli_run_p50_ms", "cli_native_no_site_p50_ms"];
    bench_section("cli", &present, &["trivial_p50_ms", "spans_recorded_per_s"]);
}

#[test]
fn bench_only_access_reports_what_deciding_who_asks_costs() {
    let present = ["access_token_p50_ms", "access_key_p50_ms", "access_key_stale_p50_ms"];
    bench_section("access", &present, &["trivial_p50_ms", "spans_recorded_per_s"]);
}
