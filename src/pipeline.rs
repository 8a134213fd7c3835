//! One worker's packet path: decode → flow table → TCP reassembly → HTTP → exchanges.
//! No I/O and no clock here: packets and their capture times go in, exchanges come out.
//!
//! The path has two halves so it can be sharded: the [`Front`] decodes frames into TCP
//! segments (a file reader runs it once and hands segments to workers by flow), the
//! [`FlowTable`] turns segments into exchanges.

use crate::capture::bpf::Filter;
use crate::capture::{Nanos, Packet};
use crate::decode::{DecodeError, Decoded, Decoder, TcpSegment};
use crate::flow::{FlowConfig, FlowStats, FlowTable};
use crate::http::Exchange;

/// Capture-level counters.
#[derive(Debug, Default, Clone)]
pub struct CaptureStats {
    pub packets: u64,
    /// Bytes on the wire (original frame lengths).
    pub bytes: u64,
    /// Bytes actually captured.
    pub captured_bytes: u64,
    pub decode_errors: [u64; DecodeError::ALL.len()],
    pub not_tcp: u64,
    pub tcp_segments: u64,
    /// Frames the kernel dropped before apiwatch could read them (live capture).
    pub kernel_drops: u64,
    /// Times the kernel froze the ring because it was full (TPACKET_V3).
    pub kernel_freezes: u64,
    /// Fragmented datagrams evicted from a full fragment table (count or bytes).
    pub fragments_evicted: u64,
    pub first_ts: Option<Nanos>,
    pub last_ts: Option<Nanos>,
}

impl CaptureStats {
    pub fn decode_errors_total(&self) -> u64 {
        self.decode_errors.iter().sum()
    }

    /// Adds another worker's counters.
    pub fn add(&mut self, o: &CaptureStats) {
        self.packets += o.packets;
        self.bytes += o.bytes;
        self.captured_bytes += o.captured_bytes;
        for (a, b) in self.decode_errors.iter_mut().zip(o.decode_errors.iter()) {
            *a += b;
        }
        self.not_tcp += o.not_tcp;
        self.tcp_segments += o.tcp_segments;
        self.kernel_drops += o.kernel_drops;
        self.kernel_freezes += o.kernel_freezes;
        self.fragments_evicted += o.fragments_evicted;
        self.first_ts = match (self.first_ts, o.first_ts) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_ts = self.last_ts.max(o.last_ts);
    }
}

/// Everything the pipeline counts, summed over workers for metrics and the summary.
#[derive(Debug, Default, Clone)]
pub struct PipelineStats {
    pub capture: CaptureStats,
    pub flows: FlowStats,
    /// Connections tracked now.
    pub active_flows: usize,
    /// Per worker: TCP segments processed and connections tracked (fanout balance).
    pub workers: Vec<(u64, usize)>,
}

impl PipelineStats {
    pub fn add(&mut self, o: &PipelineStats) {
        self.capture.add(&o.capture);
        self.flows.add(&o.flows);
        self.active_flows += o.active_flows;
        self.workers.extend_from_slice(&o.workers);
    }
}

/// Frames to TCP segments: link and network layers, IP fragment reassembly, and the
/// capture counters.
pub struct Front {
    decoder: Decoder,
    pub stats: CaptureStats,
    /// A capture filter applied to files (live sockets filter in the kernel).
    pub filter: Option<Filter>,
    logged: u32,
}

impl Default for Front {
    fn default() -> Self {
        Front {
            decoder: Decoder::new(),
            stats: CaptureStats::default(),
            filter: None,
            logged: 0,
        }
    }
}

impl Front {
    pub fn with_filter(filter: Option<Filter>) -> Self {
        Front {
            filter,
            ..Front::default()
        }
    }

    /// Holds at most `bytes` of IP fragments (a share of `memory.limit`).
    pub fn set_fragment_budget(&mut self, bytes: usize) {
        self.decoder.fragments = crate::decode::fragments::Fragments::with_budget(bytes);
    }

    /// Decodes one captured frame; a TCP segment it carries (or completes, for the
    /// last IP fragment) is handed to `seg`.
    pub fn packet(&mut self, p: &Packet<'_>, mut seg: impl FnMut(&TcpSegment<'_>)) {
        if let Some(f) = self.filter.as_mut() {
            // As tcpdump -r: a packet the filter rejects is not read at all.
            if !f.matches(p.linktype, p.data) {
                return;
            }
        }
        let s = &mut self.stats;
        s.packets += 1;
        s.bytes += p.orig_len.max(p.data.len() as u32) as u64;
        s.captured_bytes += p.data.len() as u64;
        s.first_ts.get_or_insert(p.ts);
        s.last_ts = Some(s.last_ts.map_or(p.ts, |t| t.max(p.ts)));
        match self.decoder.decode(p.linktype, p.data, p.ts) {
            Ok(Decoded::Tcp(t)) => {
                self.stats.tcp_segments += 1;
                seg(&t);
            }
            Ok(Decoded::Reassembled(dg)) => match self.decoder.decode_datagram(&dg, p.ts) {
                Ok(Decoded::Tcp(t)) => {
                    self.stats.tcp_segments += 1;
                    seg(&t);
                }
                Ok(_) => self.stats.not_tcp += 1,
                Err(e) => self.decode_error(e, p.linktype),
            },
            Ok(Decoded::FragmentHeld) => {
                self.stats.fragments_evicted = self.decoder.fragments.stats.evicted;
            }
            Ok(Decoded::NotTcp) => self.stats.not_tcp += 1,
            Err(e) => self.decode_error(e, p.linktype),
        }
    }

    fn decode_error(&mut self, e: DecodeError, linktype: u32) {
        self.stats.decode_errors[e.index()] += 1;
        let bit = 1u32 << e.index();
        if self.logged & bit == 0 {
            self.logged |= bit;
            let (layer, reason) = e.labels();
            tracing::warn!(
                layer,
                reason,
                linktype,
                "Packet could not be decoded; further ones are only counted"
            );
        }
    }
}

/// The packet-to-exchange pipeline of one worker.
pub struct Pipeline {
    pub front: Front,
    pub flows: FlowTable,
}

impl Pipeline {
    pub fn new(cfg: FlowConfig) -> Self {
        let mut front = Front::default();
        front.set_fragment_budget(cfg.fragment_bytes);
        Pipeline {
            front,
            flows: FlowTable::new(cfg),
        }
    }

    /// Processes one captured frame; completed exchanges are appended to `out`.
    pub fn packet(&mut self, p: &Packet<'_>, out: &mut Vec<Exchange>) {
        self.flows.tick(p.ts, out);
        let flows = &mut self.flows;
        self.front.packet(p, |seg| flows.segment(seg, p.ts, out));
    }

    /// Time passed without packets (live capture on a quiet wire).
    pub fn idle(&mut self, now: Nanos, out: &mut Vec<Exchange>) {
        self.flows.tick(now, out);
    }

    /// End of input: every open connection is finished.
    pub fn finish(&mut self, out: &mut Vec<Exchange>) {
        self.flows.flush_all(out);
    }

    /// The counters so far.
    pub fn stats(&self) -> PipelineStats {
        PipelineStats {
            capture: self.front.stats.clone(),
            flows: self.flows.stats.clone(),
            active_flows: self.flows.active(),
            workers: vec![(self.flows.stats.segments, self.flows.active())],
        }
    }
}
