//! `-i IFACE`: live capture from an AF_PACKET socket (Linux, no system library).
//!
//! This first cut reads one packet per `recvfrom` from a promiscuous socket bound to
//! the interface, with a short receive timeout so the caller can notice a stop
//! request while the wire is quiet. The memory-mapped TPACKET_V3 ring with fanout
//! across workers is the next step; this gives the same packets, slower.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use super::{Nanos, Packet};
use crate::decode::linktype;

/// Why an interface cannot be captured from.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    #[error("{0}: no such interface (see `ip link`)")]
    NoSuchInterface(String),
    #[error(
        "{0}: capture needs CAP_NET_RAW: run as root or `setcap cap_net_raw,cap_net_admin+ep` on the binary"
    )]
    Permission(String),
    #[error("{0}: {1}")]
    Os(String, io::Error),
}

impl LiveError {
    /// Errors the user can fix by changing the command (exit code 2).
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            LiveError::NoSuchInterface(_) | LiveError::Permission(_)
        )
    }
}

/// A live capture socket.
pub struct LiveSource {
    fd: OwnedFd,
    buf: Vec<u8>,
    linktype: u32,
    /// On loopback every packet is seen twice (out and in): keep one copy.
    skip_outgoing: bool,
    pub received: u64,
}

const ETH_P_ALL: u16 = 0x0003;

impl LiveSource {
    pub fn open(iface: &str) -> Result<Self, LiveError> {
        let name =
            CString::new(iface).map_err(|_| LiveError::NoSuchInterface(iface.to_string()))?;
        // SAFETY: plain libc calls on a NUL-terminated name and on a socket we own.
        let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
        if index == 0 {
            return Err(LiveError::NoSuchInterface(iface.to_string()));
        }
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                i32::from(ETH_P_ALL.to_be()),
            )
        };
        if raw < 0 {
            let e = io::Error::last_os_error();
            return Err(match e.raw_os_error() {
                Some(libc::EPERM | libc::EACCES) => LiveError::Permission(iface.to_string()),
                _ => LiveError::Os(iface.to_string(), e),
            });
        }
        // SAFETY: `raw` is a fresh descriptor we own from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let os = |what: &str| LiveError::Os(format!("{iface}: {what}"), io::Error::last_os_error());
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = index as i32;
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc != 0 {
            return Err(os("bind"));
        }
        let mreq = libc::packet_mreq {
            mr_ifindex: index as i32,
            mr_type: libc::PACKET_MR_PROMISC as u16,
            mr_alen: 0,
            mr_address: [0; 8],
        };
        let rc = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_ADD_MEMBERSHIP,
                (&mreq as *const libc::packet_mreq).cast(),
                std::mem::size_of::<libc::packet_mreq>() as u32,
            )
        };
        if rc != 0 {
            return Err(os("promiscuous mode"));
        }
        let tv = libc::timeval {
            tv_sec: 0,
            tv_usec: 200_000,
        };
        let rcvbuf: libc::c_int = 16 << 20;
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as u32,
            );
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&rcvbuf as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            );
        }
        // ARPHRD_* of the device: 1 Ethernet, 772 loopback.
        let hw_type =
            std::fs::read_to_string(format!("/sys/class/net/{iface}/type")).unwrap_or_default();
        let is_loopback = hw_type.trim() == "772";
        // Ethernet and loopback deliver Ethernet frames; other devices (tun) raw IP.
        let linktype = match hw_type.trim() {
            "1" | "772" => linktype::ETHERNET,
            _ => linktype::RAW,
        };
        Ok(LiveSource {
            fd,
            buf: vec![0; 256 * 1024],
            linktype,
            skip_outgoing: is_loopback,
            received: 0,
        })
    }

    /// The next packet, or `None` when the receive timeout passed with none.
    pub fn next_packet(&mut self) -> io::Result<Option<Packet<'_>>> {
        loop {
            let mut from: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            // SAFETY: the buffer and address outlive the call; sizes are theirs.
            let n = unsafe {
                libc::recvfrom(
                    self.fd.as_raw_fd(),
                    self.buf.as_mut_ptr().cast(),
                    self.buf.len(),
                    libc::MSG_TRUNC,
                    (&mut from as *mut libc::sockaddr_ll).cast(),
                    &mut len,
                )
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                return match e.kind() {
                    io::ErrorKind::WouldBlock
                    | io::ErrorKind::TimedOut
                    | io::ErrorKind::Interrupted => Ok(None),
                    _ => Err(e),
                };
            }
            if self.skip_outgoing && from.sll_pkttype == libc::PACKET_OUTGOING {
                continue;
            }
            self.received += 1;
            let orig = n as usize;
            let caplen = orig.min(self.buf.len());
            return Ok(Some(Packet {
                ts: now(),
                linktype: self.linktype,
                data: &self.buf[..caplen],
                orig_len: orig as u32,
            }));
        }
    }
}

fn now() -> Nanos {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as Nanos)
        .unwrap_or(0)
}
