//! The listening TCP sockets of one port, asked of the kernel over `sock_diag` netlink.
//!
//! Reading `/proc/net/tcp` walks every slot of the machine's connection hash table, empty
//! or not, TIME_WAIT included: ~1.5 ms per table on an idle machine with 24 GiB, paid at
//! each verification of a loopback service. A `sock_diag` dump asking for the LISTEN state
//! only walks the listening table and never the connections, and the kernel filters by
//! source port itself: tens of microseconds for both families. `None` where the kernel
//! does not answer (no `inet_diag`, a seccomp filter): the caller reads `/proc` instead.

use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};

use netlink_packet_core::{
    NLM_F_DUMP, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage, NetlinkPayload,
};
use netlink_packet_sock_diag::{
    AF_INET, AF_INET6, IPPROTO_TCP, SockDiagMessage,
    inet::{ExtensionFlags, InetRequest, SocketId, StateFlags},
};
use nix::sys::socket::{
    AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol, SockType, recv, sendto, socket,
};

use super::Listener;

/// The sockets listening on `port`, both families. `None` if the kernel cannot be asked.
pub(super) fn listening_on(port: u16) -> Option<Vec<Listener>> {
    let fd = socket(
        AddressFamily::Netlink,
        SockType::Datagram,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkSockDiag,
    )
    .ok()?;
    let mut out = Vec::new();
    for (family, any) in [
        (AF_INET, SocketId::new_v4()),
        (AF_INET6, SocketId::new_v6()),
    ] {
        dump(
            &fd,
            family,
            SocketId {
                source_port: port,
                ..any
            },
            &mut out,
        )?;
    }
    Some(out)
}

/// One family's dump of LISTEN sockets matching `id`'s source port, appended to `out`.
fn dump(fd: &OwnedFd, family: u8, id: SocketId, out: &mut Vec<Listener>) -> Option<()> {
    let mut header = NetlinkHeader::default();
    header.flags = NLM_F_REQUEST | NLM_F_DUMP;
    let mut request = NetlinkMessage::new(
        header,
        SockDiagMessage::InetRequest(InetRequest {
            family,
            protocol: IPPROTO_TCP,
            extensions: ExtensionFlags::empty(),
            states: StateFlags::LISTEN,
            socket_id: id,
        })
        .into(),
    );
    request.finalize();
    let mut bytes = vec![0; request.buffer_len()];
    request.serialize(&mut bytes);
    sendto(
        fd.as_raw_fd(),
        &bytes,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )
    .ok()?;

    // Big enough for any batch the kernel sends at once (it fills at most 32 KiB).
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = recv(fd.as_raw_fd(), &mut buf, MsgFlags::empty()).ok()?;
        if n == 0 {
            return None;
        }
        let mut rest = &buf[..n];
        while !rest.is_empty() {
            let message = NetlinkMessage::<SockDiagMessage>::deserialize(rest).ok()?;
            let len = message.header.length as usize;
            match message.payload {
                NetlinkPayload::InnerMessage(SockDiagMessage::InetResponse(r)) => {
                    let h = &r.header;
                    out.push(Listener {
                        addr: SocketAddr::new(h.socket_id.source_address, h.socket_id.source_port),
                        inode: u64::from(h.inode),
                        uid: h.uid,
                    });
                }
                NetlinkPayload::Done(_) => return Some(()),
                NetlinkPayload::Noop => {}
                // An error (EPERM, no inet_diag) or a message this does not expect.
                _ => return None,
            }
            // Messages are aligned to 4 bytes.
            let next = (len + 3) & !3;
            if len == 0 || next > rest.len() {
                break;
            }
            rest = &rest[next..];
        }
    }
}
