//! TURN over TCP for the `webrtc` crate, whose TURN client speaks UDP only (0.21
//! skips every `turn:` URL with `transport=tcp` and every `turns:` URL).
//!
//! Networks that block UDP leave TCP as the only way to a TURN server. For each
//! `turn:` URL with `transport=tcp`, [`bridge_tcp_servers`] starts a bridge on a
//! local UDP port and gives the peer connections a `turn:` URL of that port
//! instead. Every local socket that sends to the bridge gets a TCP connection of
//! its own to the TURN server, so each allocation keeps its own 5-tuple there. The
//! bridge moves whole TURN messages between the datagrams and the TCP stream: STUN
//! messages as they are, and ChannelData messages padded to a multiple of four
//! bytes on TCP, as RFC 8656 (section 12.5) requires. The server still relays to
//! the peers over UDP, as with a browser's TURN over TCP.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use roomler_shared::call::IceServer;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long a connection to the TURN server may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The TURN port when a URL names none (RFC 8656).
const DEFAULT_PORT: u16 = 3478;
/// The largest datagram the bridge reads: a UDP payload's maximum.
const MAX_DATAGRAM: usize = 65_535;
/// STUN messages start with two zero bits; their header is 20 bytes.
const STUN_HEADER: usize = 20;

/// A `turn:` URL taken apart: its host, port and transport.
#[derive(Debug, PartialEq, Eq)]
struct TurnUrl {
    host: String,
    port: u16,
    tcp: bool,
}

/// Parses `turn:HOST[:PORT][?transport=udp|tcp]`. Returns `None` for other
/// schemes, which the crate handles itself or skips.
fn parse_turn_url(url: &str) -> Option<TurnUrl> {
    let rest = url.strip_prefix("turn:")?;
    let (address, query) = rest.split_once('?').unwrap_or((rest, ""));
    let tcp = query
        .split('&')
        .any(|pair| pair.eq_ignore_ascii_case("transport=tcp"));
    let (host, port) = match address.rsplit_once(':') {
        // A bracketed IPv6 address without a port ends with `]`.
        Some((host, port)) if !port.ends_with(']') => (host, port.parse().ok()?),
        _ => (address, DEFAULT_PORT),
    };
    Some(TurnUrl {
        host: host.to_string(),
        port,
        tcp,
    })
}

/// Replaces every `turn:` URL with `transport=tcp` in `servers` by the UDP URL of a
/// bridge to it, started on `bind` (127.0.0.1 when `bind` is unspecified). The
/// bridges run until `stop`. A URL whose host does not resolve is left out, with a
/// warning, as the crate does with a URL it cannot use.
pub async fn bridge_tcp_servers(
    servers: Vec<IceServer>,
    bind: IpAddr,
    stop: &CancellationToken,
) -> io::Result<Vec<IceServer>> {
    let local_ip = if bind.is_unspecified() {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        bind
    };
    let mut bridged = Vec::with_capacity(servers.len());
    for mut server in servers {
        let mut urls = Vec::with_capacity(server.urls.len());
        for url in server.urls {
            let Some(turn) = parse_turn_url(&url).filter(|turn| turn.tcp) else {
                urls.push(url);
                continue;
            };
            let target = (turn.host.as_str(), turn.port);
            let Some(address) = tokio::net::lookup_host(target).await?.next() else {
                tracing::warn!(url, "skipping a TURN server whose host did not resolve");
                continue;
            };
            let socket = UdpSocket::bind((local_ip, 0)).await?;
            let port = socket.local_addr()?.port();
            tokio::spawn(run_bridge(Arc::new(socket), address, stop.clone()));
            tracing::debug!(url, port, "bridging TURN over TCP");
            urls.push(format!(
                "turn:{}?transport=udp",
                SocketAddr::new(local_ip, port)
            ));
        }
        server.urls = urls;
        bridged.push(server);
    }
    Ok(bridged)
}

/// Carries the datagrams that arrive on `socket` to `server` over one TCP
/// connection per sender, and the server's messages back, until `stop`.
async fn run_bridge(socket: Arc<UdpSocket>, server: SocketAddr, stop: CancellationToken) {
    let mut connections: HashMap<SocketAddr, mpsc::UnboundedSender<Vec<u8>>> = HashMap::new();
    let mut buffer = vec![0u8; MAX_DATAGRAM];
    loop {
        let received = tokio::select! {
            () = stop.cancelled() => return,
            received = socket.recv_from(&mut buffer) => received,
        };
        let (length, sender) = match received {
            Ok(received) => received,
            Err(error) => {
                tracing::debug!(%error, "a TURN bridge failed to receive");
                continue;
            }
        };
        let datagram = buffer[..length].to_vec();
        connections.retain(|_, connection| !connection.is_closed());
        let connection = connections.entry(sender).or_insert_with(|| {
            let (messages, queue) = mpsc::unbounded_channel();
            let relay = Relay {
                socket: socket.clone(),
                sender,
                server,
            };
            tokio::spawn(relay.run(queue, stop.clone()));
            messages
        });
        let _ = connection.send(datagram);
    }
}

/// One local socket's TCP connection to the TURN server.
struct Relay {
    socket: Arc<UdpSocket>,
    /// The local socket whose datagrams this relay carries.
    sender: SocketAddr,
    server: SocketAddr,
}

impl Relay {
    /// Connects to the server, then writes the queued datagrams to it and sends
    /// what it reads back to the local socket, until either side ends or `stop`.
    async fn run(self, mut queue: mpsc::UnboundedReceiver<Vec<u8>>, stop: CancellationToken) {
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(self.server));
        let stream = match connected.await {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::warn!(server = %self.server, %error, "failed to connect to the TURN server over TCP");
                return;
            }
            Err(_) => {
                tracing::warn!(server = %self.server, "connecting to the TURN server over TCP timed out");
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let (mut reader, mut writer) = stream.into_split();
        let upstream = async {
            while let Some(datagram) = queue.recv().await {
                write_message(&mut writer, &datagram).await?;
            }
            io::Result::Ok(())
        };
        let downstream = async {
            loop {
                let message = read_message(&mut reader).await?;
                self.socket.send_to(&message, self.sender).await?;
            }
        };
        let ended: io::Result<()> = tokio::select! {
            () = stop.cancelled() => Ok(()),
            ended = upstream => ended,
            ended = downstream => ended,
        };
        if let Err(error) = ended {
            tracing::debug!(server = %self.server, %error, "a TURN connection over TCP ended");
        }
    }
}

/// Returns whether the message starting with `first` is ChannelData, whose first
/// byte carries a channel number from 0x4000 to 0x7FFF.
fn is_channel_data(first: u8) -> bool {
    (0x40..=0x7F).contains(&first)
}

/// Writes one TURN message to the TCP stream, padding ChannelData to four bytes.
async fn write_message(writer: &mut (impl AsyncWrite + Unpin), message: &[u8]) -> io::Result<()> {
    writer.write_all(message).await?;
    let padding = message.len().next_multiple_of(4) - message.len();
    if padding > 0 && message.first().copied().is_some_and(is_channel_data) {
        writer.write_all(&[0u8; 3][..padding]).await?;
    }
    Ok(())
}

/// Reads one TURN message from the TCP stream: a STUN message, or ChannelData
/// without its padding.
async fn read_message(reader: &mut (impl AsyncRead + Unpin)) -> io::Result<Vec<u8>> {
    let mut header = [0u8; 4];
    reader.read_exact(&mut header).await?;
    let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
    let (body, kept) = if header[0] & 0xC0 == 0 {
        let body = STUN_HEADER - header.len() + length;
        (body, body)
    } else if is_channel_data(header[0]) {
        (length.next_multiple_of(4), length)
    } else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "the TURN server sent a message that is neither STUN nor ChannelData (first \
                 byte {:#04x})",
                header[0]
            ),
        ));
    };
    let mut message = vec![0u8; header.len() + body];
    message[..header.len()].copy_from_slice(&header);
    reader.read_exact(&mut message[header.len()..]).await?;
    message.truncate(header.len() + kept);
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn turn_urls_parse() {
        let tcp = parse_turn_url("turn:turn.example.com:443?transport=tcp").unwrap();
        assert_eq!(tcp.host, "turn.example.com");
        assert_eq!(tcp.port, 443);
        assert!(tcp.tcp);
        let udp = parse_turn_url("turn:127.0.0.2?transport=udp").unwrap();
        assert_eq!(udp.port, DEFAULT_PORT);
        assert!(!udp.tcp);
        let v6 = parse_turn_url("turn:[::1]:3479?transport=tcp").unwrap();
        assert_eq!(v6.host, "[::1]");
        assert_eq!(v6.port, 3479);
        assert_eq!(parse_turn_url("stun:stun.example.com:3478"), None);
        assert_eq!(parse_turn_url("turns:turn.example.com:5349"), None);
    }

    #[tokio::test]
    async fn channel_data_is_padded_on_tcp() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        // Channel 0x4001 with 5 bytes of data.
        let channel_data = [0x40, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5];
        write_message(&mut client, &channel_data).await.unwrap();
        drop(client);
        let mut written = Vec::new();
        server.read_to_end(&mut written).await.unwrap();
        assert_eq!(written.len(), 12);
        assert_eq!(&written[..9], &channel_data);
        assert_eq!(&written[9..], &[0, 0, 0]);
    }

    #[tokio::test]
    async fn messages_are_split_from_the_stream() {
        // A STUN binding request with one 4-byte attribute, then ChannelData with
        // 3 bytes of data and 1 byte of padding, then a cut-off message.
        let mut stun = vec![0x00, 0x01, 0x00, 0x04, 0x21, 0x12, 0xA4, 0x42];
        stun.extend_from_slice(&[7; 12]);
        stun.extend_from_slice(&[0x80, 0x22, 0x00, 0x00]);
        let channel_data = [0x40, 0x02, 0x00, 0x03, 9, 8, 7];
        let mut stream = stun.clone();
        stream.extend_from_slice(&channel_data);
        stream.push(0);
        stream.extend_from_slice(&[0x40, 0x02, 0x00, 0x08, 1]);
        let mut reader = stream.as_slice();

        assert_eq!(read_message(&mut reader).await.unwrap(), stun);
        assert_eq!(read_message(&mut reader).await.unwrap(), channel_data);
        let cut = read_message(&mut reader).await.unwrap_err();
        assert_eq!(cut.kind(), io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn other_first_bytes_are_invalid() {
        let mut reader: &[u8] = &[0x80, 0x00, 0x00, 0x00];
        let error = read_message(&mut reader).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData);
        assert!(error.to_string().contains("0x80"), "{error}");
    }
}
