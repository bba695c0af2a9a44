//! Start-up problems exit 2 with one clear line on stderr, before anything
//! is served: bad flag combinations, an address in use, an admin listener
//! that would be reachable from outside.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_seatkeeper");

fn serve(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(BIN)
        .arg("serve")
        .args(args)
        .output()
        .expect("run seatkeeper");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `serve args`, which must exit 2 saying `says`; its stderr.
fn one_line_exit_2(args: &[&str], says: &str) -> String {
    let (code, err) = serve(args);
    assert_eq!(code, Some(2), "{args:?}: {err}");
    assert!(err.contains(says), "{args:?}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn a_pong_timeout_not_above_the_ping_interval_is_refused() {
    let err = one_line_exit_2(
        &[
            "--listen",
            "127.0.0.1:0",
            "--ping-interval-s",
            "10",
            "--pong-timeout-s",
            "2",
        ],
        "--pong-timeout-s",
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}

#[test]
fn an_address_in_use_exits_2() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    one_line_exit_2(&["--listen", &addr], "cannot listen");
    let admin = format!("--admin-listen={addr}");
    one_line_exit_2(&["--listen", "127.0.0.1:0", &admin], "admin-listen");
}

#[test]
fn the_admin_listener_must_be_loopback_or_a_unix_socket() {
    let (code, err) = serve(&["--admin-listen", "0.0.0.0:1320"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("loopback"), "{err}");
}

#[test]
fn listen_takes_localhost_and_ipv6_literals() {
    // A bad form is refused by name; the good forms parse (checked by
    // asking for a configuration error that comes after the parse).
    let (code, err) = serve(&["--listen", "nowhere.example:1318"]);
    assert_eq!(code, Some(2), "{err}");
    for ok in ["localhost:0", "[::1]:0"] {
        let (code, err) = serve(&["--listen", ok, "--seats", "0"]);
        assert_eq!(code, Some(2), "{ok}: {err}");
        assert!(err.contains("--seats"), "{ok} did not parse: {err}");
    }
}
