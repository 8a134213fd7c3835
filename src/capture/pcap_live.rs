//! `--capture-backend libpcap` (feature `libpcap`): live capture through libpcap, for
//! systems without AF_PACKET or where an operator prefers it. libpcap compiles and
//! applies the filter itself. On Linux, several handles on one interface join an
//! AF_PACKET fanout group through their descriptors, as the native backend does.

use std::io;

use super::bpf::Filter;
use super::{KernelStats, LiveCapture, LiveError, Packet, RingOptions};
use crate::decode::linktype;

/// One libpcap handle.
pub struct PcapSource {
    cap: pcap::Capture<pcap::Active>,
    linktype: u32,
    kernel: KernelStats,
    /// The last read found nothing: wait on the descriptor before the next.
    starved: bool,
}

impl PcapSource {
    pub fn open(
        iface: &str,
        opts: &RingOptions,
        fanout: Option<u16>,
        filter: Option<&Filter>,
    ) -> Result<Self, LiveError> {
        let classify = |e: pcap::Error| {
            let text = e.to_string();
            let lower = text.to_lowercase();
            if lower.contains("permission") || lower.contains("not permitted") {
                LiveError::Permission(iface.to_string())
            } else if lower.contains("no such device") || lower.contains("doesn't exist") {
                LiveError::NoSuchInterface(iface.to_string())
            } else if lower.contains("down") {
                LiveError::Down(iface.to_string())
            } else {
                LiveError::Os(format!("{iface}: libpcap"), io::Error::other(text))
            }
        };
        // libpcap takes the buffer size as a C int.
        let buffer = i32::try_from(opts.ring_mib.max(1) << 20).map_err(|_| {
            LiveError::Option(format!(
                "--ring-size {}: the libpcap backend takes at most 2047 MiB",
                opts.ring_mib
            ))
        })?;
        let mut cap = pcap::Capture::from_device(iface)
            .map_err(classify)?
            .promisc(opts.promiscuous)
            .snaplen(262_144)
            .timeout(200)
            .buffer_size(buffer)
            .precision(pcap::Precision::Nano)
            .open()
            .map_err(classify)?
            // libpcap's own timeout does not fire on a quiet TPACKET_V3 socket (the
            // kernel retires no empty block), so apiwatch polls the descriptor itself.
            .setnonblock()
            .map_err(classify)?;
        if let Some(f) = filter {
            cap.filter(f.expr(), true).map_err(|e| {
                LiveError::Filter(super::bpf::FilterError {
                    expr: f.expr().to_string(),
                    why: e.to_string(),
                })
            })?;
        }
        #[cfg(target_os = "linux")]
        if let Some(group) = fanout {
            use std::os::fd::AsRawFd;
            super::live::join_fanout(cap.as_raw_fd(), group)
                .map_err(|e| LiveError::Os(format!("{iface}: fanout group"), e))?;
        }
        #[cfg(not(target_os = "linux"))]
        if fanout.is_some() {
            return Err(LiveError::Os(
                format!("{iface}: several workers"),
                io::Error::other("need AF_PACKET fanout (Linux); use --workers 1"),
            ));
        }
        // libpcap reports DLT_* numbers; raw IP is DLT_RAW (12 or 14).
        let linktype = match cap.get_datalink().0 {
            12 | 14 => linktype::RAW,
            n => n as u32,
        };
        Ok(PcapSource {
            cap,
            linktype,
            kernel: KernelStats::default(),
            starved: true,
        })
    }
}

impl PcapSource {
    /// Waits up to 200 ms for the descriptor to become readable.
    fn ready(&mut self) -> io::Result<bool> {
        use std::os::fd::AsRawFd;
        let mut pfd = libc::pollfd {
            fd: self.cap.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, 200) };
        if rc < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(false)
            } else {
                Err(e)
            };
        }
        Ok(rc > 0)
    }
}

impl LiveCapture for PcapSource {
    fn next_packet(&mut self) -> io::Result<Option<Packet<'_>>> {
        // Poll only after the ring ran dry: no system call per packet under load.
        if self.starved && !self.ready()? {
            return Ok(None);
        }
        match self.cap.next_packet() {
            Ok(p) => {
                self.starved = false;
                Ok(Some(Packet {
                    // Nanosecond precision was asked for: tv_usec holds nanoseconds.
                    ts: (p.header.ts.tv_sec as u64)
                        .saturating_mul(1_000_000_000)
                        .saturating_add(p.header.ts.tv_usec as u64)
                        .min(super::MAX_TIME),
                    linktype: self.linktype,
                    data: p.data,
                    orig_len: p.header.len,
                }))
            }
            Err(pcap::Error::TimeoutExpired) => {
                self.starved = true;
                Ok(None)
            }
            Err(e) => Err(io::Error::other(e.to_string())),
        }
    }

    fn kernel_stats(&mut self) -> KernelStats {
        if let Ok(s) = self.cap.stats() {
            // libpcap's counters are cumulative already.
            self.kernel.packets = u64::from(s.received);
            self.kernel.drops = u64::from(s.dropped) + u64::from(s.if_dropped);
        }
        self.kernel
    }
}
