//! Timeouts and unreachable hosts, against local sockets (no lab needed).
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use credwheel_sam::{Error, SamConfig, SamTarget};
use credwheel_state::{RotationTarget, TargetErrorKind};
use secrecy::SecretString;

fn target(port: u16) -> SamTarget {
    SamTarget::new(
        SamConfig::builder("127.0.0.1")
            .port(port)
            .admin("admin", SecretString::from("Secret-Admin-1".to_owned()))
            .connect_timeout(Duration::from_millis(500))
            .request_timeout(Duration::from_millis(300))
            .build()
            .unwrap(),
    )
}

#[tokio::test]
async fn a_host_that_never_answers_times_out_as_unavailable() {
    // Accepts the TCP connection, never answers the SMB negotiate.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let (s, _) = listener.accept().await.unwrap();
            held.push(s);
        }
    });
    let t = target(port);
    let start = Instant::now();
    let e = t
        .reset_password("svc1", &SecretString::from("New-Pass-22!".to_owned()))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Timeout { .. }), "{e}");
    assert!(start.elapsed() < Duration::from_secs(5));
    let id = t.target_id("svc1").unwrap();
    let e = t
        .verify(&id, &SecretString::from("x".to_owned()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), TargetErrorKind::Unavailable, "{e}");
    assert!(!e.to_string().contains("Secret-Admin-1"));
    server.abort();
}

#[tokio::test]
async fn connection_refused_is_a_connect_error() {
    // Bind, note the port, close: nothing listens there now.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let t = target(port);
    let e = t
        .reset_password("svc1", &SecretString::from("New-Pass-22!".to_owned()))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Connect { .. }), "{e}");
    assert_eq!(
        credwheel_state::TargetError::from(&e).kind(),
        TargetErrorKind::Unavailable
    );
}
