//! Sending bytes to a network receipt printer (raw TCP, "JetDirect" port 9100).

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::time::{Instant, timeout_at};

/// The raw printing port, used when the address has none.
pub const DEFAULT_PORT: u16 = 9100;

/// Why a receipt did not reach the printer.
#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    #[error("printer address {addr:?} is not valid: expected host:port, e.g. 192.168.1.50:9100")]
    BadAddress { addr: String },
    #[error(
        "the printer at {addr} refused the connection: is it switched on, and is raw printing on port 9100 enabled?"
    )]
    Refused { addr: String },
    #[error("the printer at {addr} is unreachable (check the address and the network): {source}")]
    Unreachable {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the printer at {addr} did not answer within {} ms", .after.as_millis())]
    Timeout { addr: String, after: Duration },
    #[error("the printer at {addr} dropped the connection while printing: {source}")]
    Interrupted {
        addr: String,
        #[source]
        source: std::io::Error,
    },
}

/// `addr` with the default port added when it has none ("192.168.1.50", "printer-1").
fn target(addr: &str) -> Option<String> {
    let a = addr.trim();
    if a.is_empty() {
        return None;
    }
    if a.parse::<SocketAddr>().is_ok() {
        return Some(a.to_string());
    }
    if let Ok(ip) = a.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, DEFAULT_PORT).to_string());
    }
    if a.contains(':') {
        Some(a.to_string())
    } else {
        Some(format!("{a}:{DEFAULT_PORT}"))
    }
}

/// Sends `bytes` (e.g. from [`super::render_escpos`]) to the printer at `addr`
/// ("192.168.1.50:9100"; port 9100 when omitted): connect, write everything, flush and
/// close our side. `timeout` bounds the whole job, connecting included.
pub async fn print_to(addr: &str, bytes: &[u8], timeout: Duration) -> Result<(), PrintError> {
    let target = target(addr).ok_or_else(|| PrintError::BadAddress {
        addr: addr.to_string(),
    })?;
    let deadline = Instant::now() + timeout;
    let timed_out = || PrintError::Timeout {
        addr: target.clone(),
        after: timeout,
    };
    let mut stream = match timeout_at(deadline, TcpStream::connect(target.as_str())).await {
        Err(_) => return Err(timed_out()),
        Ok(Err(e)) => {
            return Err(match e.kind() {
                ErrorKind::ConnectionRefused => PrintError::Refused { addr: target },
                ErrorKind::InvalidInput => PrintError::BadAddress { addr: target },
                _ => PrintError::Unreachable {
                    addr: target,
                    source: e,
                },
            });
        }
        Ok(Ok(s)) => s,
    };
    let send = async {
        stream.write_all(bytes).await?;
        stream.flush().await?;
        stream.shutdown().await
    };
    match timeout_at(deadline, send).await {
        Err(_) => Err(timed_out()),
        Ok(Err(e)) => Err(PrintError::Interrupted {
            addr: target,
            source: e,
        }),
        Ok(Ok(())) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::sample;
    use super::super::{Paper, render_escpos};
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    #[test]
    fn adds_the_default_port() {
        assert_eq!(target("192.168.1.50").unwrap(), "192.168.1.50:9100");
        assert_eq!(target(" 10.0.0.2:9101 ").unwrap(), "10.0.0.2:9101");
        assert_eq!(target("::1").unwrap(), "[::1]:9100");
        assert_eq!(target("printer-1").unwrap(), "printer-1:9100");
        assert!(target("  ").is_none());
    }

    #[tokio::test]
    async fn a_listener_receives_exactly_the_bytes() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let capture = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            sock.read_to_end(&mut got).await.unwrap();
            got
        });
        let bytes = render_escpos(&sample(), Paper::Mm80);
        print_to(&addr, &bytes, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(capture.await.unwrap(), bytes);
    }

    #[tokio::test]
    async fn a_closed_port_is_refused_quickly() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        drop(listener);
        let started = std::time::Instant::now();
        let err = print_to(&addr, b"x", Duration::from_secs(5))
            .await
            .unwrap_err();
        assert!(matches!(err, PrintError::Refused { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(err.to_string().contains("refused the connection"));
    }

    #[tokio::test]
    async fn a_printer_that_stops_reading_times_out() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        // Accepts, then never reads: the socket buffers fill and writing stalls.
        let hold = tokio::spawn(async move {
            let (sock, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(sock);
        });
        let bytes = vec![b'x'; 64 << 20];
        let started = std::time::Instant::now();
        let err = print_to(&addr, &bytes, Duration::from_millis(300))
            .await
            .unwrap_err();
        assert!(matches!(err, PrintError::Timeout { .. }), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(err.to_string().contains("did not answer within 300 ms"));
        hold.abort();
    }

    #[tokio::test]
    async fn a_bad_address_is_refused_before_connecting() {
        let err = print_to("", b"x", Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(err, PrintError::BadAddress { .. }));
        let err = print_to("1.2.3.4:notaport", b"x", Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(err, PrintError::BadAddress { .. }), "{err:?}");
    }
}
