//! `-i IFACE`: live capture from AF_PACKET sockets with a memory-mapped TPACKET_V3
//! ring (Linux, no system library).
//!
//! The kernel fills fixed-size blocks of the ring with variable-length frames and
//! hands a block over when it is full or when the block timeout passes; apiwatch reads
//! the frames in place (no copy, no system call per packet) and gives the block back.
//! Several sockets on one interface join a fanout group: the kernel hashes each
//! packet's flow symmetrically (IP fragments are reassembled first) so both directions
//! of a connection reach the same worker. `any` captures on every interface in cooked
//! mode (frames start at the IP header). Kernel drop counters come from
//! PACKET_STATISTICS.
//!
//! Struct layouts are those of linux/if_packet.h, read at their fixed offsets.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicU32, Ordering};

use super::bpf::Filter;
use super::{BpfInsn, KernelStats, LiveCapture, LiveError, Packet, RingOptions};
use crate::decode::linktype;

const ETH_P_ALL: u16 = 0x0003;
const SOL_PACKET: libc::c_int = 263;
const PACKET_ADD_MEMBERSHIP: libc::c_int = 1;
const PACKET_RX_RING: libc::c_int = 5;
const PACKET_STATISTICS: libc::c_int = 6;
const PACKET_VERSION: libc::c_int = 10;
const PACKET_FANOUT: libc::c_int = 18;
const TPACKET_V3: libc::c_int = 2;
const PACKET_FANOUT_HASH: u32 = 0;
const PACKET_FANOUT_FLAG_DEFRAG: u32 = 0x8000;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const PACKET_OUTGOING: u8 = 4;
const BLOCK_SIZE: usize = 1 << 20;

/// struct tpacket_req3.
#[repr(C)]
struct RingRequest {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

/// Kernel counters since the last read (struct tpacket_stats_v3).
#[repr(C)]
#[derive(Default)]
struct RingStats {
    packets: u32,
    drops: u32,
    freeze_q_cnt: u32,
}

/// Bytes of a frame header read here: `tpacket3_hdr` (48) and the `sockaddr_ll`
/// fields after it up to `sll_pkttype` (offset 58).
const FRAME_HEADER: usize = 60;

/// Whether a frame header at `offset` lies inside a block.
fn frame_fits(offset: usize) -> bool {
    offset
        .checked_add(FRAME_HEADER)
        .is_some_and(|end| end <= BLOCK_SIZE)
}

/// The next block and frame to read.
struct Cursor {
    remaining: u32,
    offset: usize,
}

impl LiveCapture for LiveSource {
    fn next_packet(&mut self) -> io::Result<Option<Packet<'_>>> {
        LiveSource::next_packet(self)
    }

    fn kernel_stats(&mut self) -> KernelStats {
        LiveSource::kernel_stats(self)
    }
}

/// Joins a PACKET_FANOUT hash group (IP fragments reassembled before hashing).
pub fn join_fanout(fd: RawFd, group: u16) -> io::Result<()> {
    let arg: u32 = u32::from(group) | ((PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG) << 16);
    setopt(fd, SOL_PACKET, PACKET_FANOUT, &arg)
}

/// One capture socket with its ring.
pub struct LiveSource {
    fd: OwnedFd,
    ring: *mut u8,
    ring_len: usize,
    blocks: usize,
    block: usize,
    cursor: Option<Cursor>,
    linktype: u32,
    /// Cooked capture (`any`): frames start at the network header.
    cooked: bool,
    /// On loopback every packet is seen twice (out and in): keep one copy.
    loopback: Option<i32>,
    kernel: KernelStats,
    /// Packets were handed out since the ring last ran dry.
    delivered: bool,
    /// Frames whose header offset left their block (a kernel or memory fault).
    bad_frames: u64,
}

// SAFETY: the ring is owned by this source alone; the raw pointer is only an address
// into a mapping that lives as long as the source.
unsafe impl Send for LiveSource {}

impl Drop for LiveSource {
    fn drop(&mut self) {
        // SAFETY: the mapping was created in `open` with this length and nothing
        // borrowed from it outlives `&mut self`.
        unsafe {
            libc::munmap(self.ring.cast(), self.ring_len);
        }
    }
}

fn interface_index(iface: &str) -> Result<i32, LiveError> {
    let name = CString::new(iface).map_err(|_| LiveError::NoSuchInterface(iface.to_string()))?;
    // SAFETY: a NUL-terminated name.
    let index = unsafe { libc::if_nametoindex(name.as_ptr()) };
    if index == 0 {
        return Err(LiveError::NoSuchInterface(iface.to_string()));
    }
    Ok(index as i32)
}

fn setopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: `v` is a live value of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (v as *const T).cast(),
            std::mem::size_of::<T>() as u32,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Reads a native-endian integer at `off` of a frame or block header.
///
/// # Safety
/// `base + off .. + size_of::<T>()` must lie inside the ring.
unsafe fn field<T: Copy>(base: *const u8, off: usize) -> T {
    // SAFETY: guaranteed by the caller.
    unsafe { std::ptr::read_unaligned(base.add(off).cast::<T>()) }
}

impl LiveSource {
    /// Opens a capture socket on `iface` (`any` for every interface). With `fanout`,
    /// the socket joins that group and the kernel splits packets over its members by
    /// flow. `filter` is attached before the first packet is read.
    pub fn open(
        iface: &str,
        opts: &RingOptions,
        fanout: Option<u16>,
        filter: Option<&mut Filter>,
    ) -> Result<Self, LiveError> {
        let cooked = iface == "any";
        let index = if cooked { 0 } else { interface_index(iface)? };
        if !cooked && !interface_up(iface) {
            return Err(LiveError::Down(iface.to_string()));
        }
        // ARPHRD_* of the device: 1 Ethernet, 772 loopback; others (tun) carry raw IP.
        let hw_type = if cooked {
            String::new()
        } else {
            std::fs::read_to_string(format!("/sys/class/net/{iface}/type")).unwrap_or_default()
        };
        let link = match hw_type.trim() {
            "1" | "772" => linktype::ETHERNET,
            _ => linktype::RAW,
        };
        let program = match filter {
            Some(f) => Some(f.program(link).map_err(LiveError::Filter)?),
            None => None,
        };
        let kind = if cooked {
            libc::SOCK_DGRAM
        } else {
            libc::SOCK_RAW
        };
        // SAFETY: plain socket creation.
        let raw = unsafe {
            libc::socket(
                libc::AF_PACKET,
                kind | libc::SOCK_CLOEXEC,
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
        let s = fd.as_raw_fd();
        let os = |what: &str, e: io::Error| LiveError::Os(format!("{iface}: {what}"), e);

        // A filter first, so no unfiltered packet reaches the ring.
        if let Some(prog) = &program {
            attach_filter(s, &prog.0).map_err(|e| os("attaching the capture filter", e))?;
        }
        setopt(s, SOL_PACKET, PACKET_VERSION, &TPACKET_V3)
            .map_err(|e| os("TPACKET_V3 ring not supported by this kernel", e))?;
        let blocks = (opts.ring_mib.max(1) * (1 << 20)) / BLOCK_SIZE;
        let req = RingRequest {
            block_size: BLOCK_SIZE as u32,
            block_nr: blocks as u32,
            frame_size: 2048,
            frame_nr: (BLOCK_SIZE / 2048 * blocks) as u32,
            retire_blk_tov: opts.block_timeout_ms.max(1),
            sizeof_priv: 0,
            feature_req_word: 0,
        };
        setopt(s, SOL_PACKET, PACKET_RX_RING, &req)
            .map_err(|e| os(&format!("cannot set up a {} MiB ring", opts.ring_mib), e))?;
        let ring_len = BLOCK_SIZE * blocks;
        // SAFETY: maps the ring the kernel just allocated for this socket.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                ring_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                s,
                0,
            )
        };
        if ring == libc::MAP_FAILED {
            return Err(os("mapping the ring", io::Error::last_os_error()));
        }
        let src = LiveSource {
            fd,
            ring: ring.cast(),
            ring_len,
            blocks,
            block: 0,
            cursor: None,
            linktype: linktype::ETHERNET,
            cooked,
            loopback: None,
            kernel: KernelStats::default(),
            delivered: false,
            bad_frames: 0,
        };
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = index;
        // SAFETY: a sockaddr_ll of the size passed.
        let rc = unsafe {
            libc::bind(
                s,
                (&sll as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if rc != 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ENETDOWN) {
                return Err(LiveError::Down(iface.to_string()));
            }
            return Err(os("bind", e));
        }
        if opts.promiscuous && !cooked {
            let mreq = libc::packet_mreq {
                mr_ifindex: index,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            setopt(s, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq)
                .map_err(|e| os("promiscuous mode", e))?;
        }
        if let Some(group) = fanout {
            join_fanout(s, group).map_err(|e| os("fanout group", e))?;
        }
        let mut src = src;
        src.linktype = link;
        src.loopback = if cooked {
            interface_index("lo").ok()
        } else if hw_type.trim() == "772" {
            Some(index)
        } else {
            None
        };
        Ok(src)
    }

    /// The next packet; `None` when nothing arrived within about 200 ms.
    pub fn next_packet(&mut self) -> io::Result<Option<Packet<'_>>> {
        let mut polled = false;
        loop {
            let block = self.block_ptr();
            if let Some(c) = self.cursor.as_mut() {
                if c.remaining == 0 {
                    // Every frame of the block was read: give it back.
                    self.release_block();
                    continue;
                }
                c.remaining -= 1;
                if !frame_fits(c.offset) {
                    // The kernel's offsets are not trusted blindly: a frame header
                    // that would leave the block ends the block.
                    c.remaining = 0;
                    self.bad_frames += 1;
                    if self.bad_frames == 1 {
                        tracing::warn!(
                            offset = c.offset,
                            "ring frame outside its block; rest of the block skipped"
                        );
                    }
                    continue;
                }
                // SAFETY: `frame_fits` checked that the frame header lies inside the
                // block the kernel handed over; the data slice is cut to the block below.
                let (ts, data, orig_len, pkttype, ifindex, protocol) = unsafe {
                    let hdr = block.add(c.offset);
                    let next: u32 = field(hdr, 0);
                    let sec: u32 = field(hdr, 4);
                    let nsec: u32 = field(hdr, 8);
                    let snaplen: u32 = field(hdr, 12);
                    let len: u32 = field(hdr, 16);
                    let mac: u16 = field(hdr, 24);
                    let net: u16 = field(hdr, 26);
                    let protocol: u16 = field(hdr, 50);
                    let ifindex: i32 = field(hdr, 52);
                    let pkttype: u8 = field(hdr, 58);
                    let here = c.offset;
                    c.offset = here.saturating_add(next as usize);
                    let start = if self.cooked { net } else { mac } as usize;
                    let at = here + start;
                    let data: &[u8] = if at < BLOCK_SIZE {
                        let n = (snaplen as usize).min(BLOCK_SIZE - at);
                        std::slice::from_raw_parts(block.add(at), n)
                    } else {
                        &[]
                    };
                    (
                        (u64::from(sec) * 1_000_000_000 + u64::from(nsec)).min(super::MAX_TIME),
                        data,
                        len,
                        pkttype,
                        ifindex,
                        u16::from_be(protocol),
                    )
                };
                if pkttype == PACKET_OUTGOING && self.loopback == Some(ifindex) {
                    continue;
                }
                if self.cooked && protocol != 0x0800 && protocol != 0x86dd {
                    // Cooked frames carry no link header: only IP can be decoded.
                    continue;
                }
                self.delivered = true;
                return Ok(Some(Packet {
                    ts,
                    linktype: if self.cooked {
                        linktype::RAW
                    } else {
                        self.linktype
                    },
                    data,
                    orig_len,
                }));
            }
            if self.block_status() & TP_STATUS_USER != 0 {
                // SAFETY: the block belongs to user space until released.
                let (num, first) = unsafe { (field::<u32>(block, 12), field::<u32>(block, 16)) };
                self.cursor = Some(Cursor {
                    remaining: num,
                    offset: first as usize,
                });
                continue;
            }
            // The ring ran dry: say so at once after handing out packets, so the caller
            // passes on what it finished before this thread sleeps in poll.
            if polled || std::mem::take(&mut self.delivered) {
                return Ok(None);
            }
            polled = true;
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN | libc::POLLERR,
                revents: 0,
            };
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, 200) };
            if rc < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
                return Ok(None);
            }
        }
    }

    fn block_ptr(&self) -> *mut u8 {
        // SAFETY: `block < blocks`, so the offset stays inside the ring.
        unsafe { self.ring.add(self.block * BLOCK_SIZE) }
    }

    /// The block's status word, read with acquire ordering (the kernel publishes the
    /// frames before setting TP_STATUS_USER).
    fn block_status(&self) -> u32 {
        // SAFETY: offset 8 of a block descriptor is its aligned u32 status word.
        let status = unsafe { &*(self.block_ptr().add(8) as *const AtomicU32) };
        status.load(Ordering::Acquire)
    }

    fn release_block(&mut self) {
        // SAFETY: as in `block_status`; release ordering so our reads of the block
        // happen before the kernel may overwrite it.
        let status = unsafe { &*(self.block_ptr().add(8) as *const AtomicU32) };
        status.store(TP_STATUS_KERNEL, Ordering::Release);
        self.cursor = None;
        self.block = (self.block + 1) % self.blocks;
    }

    /// Kernel counters so far (PACKET_STATISTICS resets on each read; they are summed).
    pub fn kernel_stats(&mut self) -> KernelStats {
        let mut st = RingStats::default();
        let mut len = std::mem::size_of::<RingStats>() as u32;
        // SAFETY: `st` has the size passed.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                SOL_PACKET,
                PACKET_STATISTICS,
                (&mut st as *mut RingStats).cast(),
                &mut len,
            )
        };
        if rc == 0 {
            self.kernel.packets += u64::from(st.packets);
            self.kernel.drops += u64::from(st.drops);
            self.kernel.freezes += u64::from(st.freeze_q_cnt);
        }
        self.kernel
    }
}

fn attach_filter(fd: RawFd, prog: &[BpfInsn]) -> io::Result<()> {
    #[repr(C)]
    struct Fprog {
        len: u16,
        filter: *const BpfInsn,
    }
    let len = u16::try_from(prog.len())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "filter program too long"))?;
    let f = Fprog {
        len,
        filter: prog.as_ptr(),
    };
    setopt(fd, libc::SOL_SOCKET, libc::SO_ATTACH_FILTER, &f)
}

/// Whether the interface is administratively up (`/sys/class/net/X/flags`, IFF_UP).
fn interface_up(iface: &str) -> bool {
    std::fs::read_to_string(format!("/sys/class/net/{iface}/flags"))
        .ok()
        .and_then(|s| u32::from_str_radix(s.trim().trim_start_matches("0x"), 16).ok())
        .is_none_or(|flags| flags & 1 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_offsets_from_the_kernel_are_checked_against_the_block() {
        assert!(frame_fits(0));
        assert!(frame_fits(BLOCK_SIZE - FRAME_HEADER));
        assert!(!frame_fits(BLOCK_SIZE - FRAME_HEADER + 1));
        assert!(!frame_fits(usize::MAX - 10));
    }
}
