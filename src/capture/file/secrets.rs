//! TLS key logs carried in a pcapng file: Decryption Secrets Blocks
//! (draft-ietf-opsawg-pcapng §4.7, block type 0x0000000A, secrets type 0x544c534b
//! "TLSK": NSS key log lines), as `editcap --inject-secrets tls,KEYS` writes them.
//!
//! Wireshark requires a connection's secrets to come before its packets, and tools
//! put the blocks right after the section header; so only the blocks before the first
//! packet are read here, before the replay starts, and the packets are never touched.
//! Bounded: at most [`MAX_BLOCKS`] blocks and [`MAX_SECRETS`] bytes of secrets.

use std::io::Read;

/// Blocks read before the first packet at most (section and interface headers,
/// name resolution, statistics, secrets).
const MAX_BLOCKS: usize = 1024;
/// Secrets bytes taken from one file at most (a TLS 1.3 connection's lines are
/// about 600 bytes: some 100,000 connections).
pub const MAX_SECRETS: usize = 64 << 20;
const SECTION_HEADER: u32 = 0x0A0D_0D0A;
const DECRYPTION_SECRETS: u32 = 0x0000_000A;
const TLS_KEY_LOG: u32 = 0x544c_534b;

/// The TLS key log lines of a capture file's Decryption Secrets Blocks (empty for a
/// pcap, stdin, or a pcapng without them). Gzip-compressed files are read through.
pub fn tls_key_log(path: &str) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    if path == "-" {
        return Ok(out);
    }
    let mut f = std::fs::File::open(path)?;
    let mut magic = [0u8; 2];
    let n = f.read(&mut magic)?;
    let f = std::fs::File::open(path)?;
    let reader: Box<dyn Read> = if n == 2 && magic == [0x1f, 0x8b] {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else {
        Box::new(f)
    };
    let mut r = std::io::BufReader::new(reader);
    let mut big = false;
    for i in 0..MAX_BLOCKS {
        let mut head = [0u8; 12];
        if r.read_exact(&mut head).is_err() {
            break;
        }
        let raw_type = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        if raw_type == SECTION_HEADER {
            big = match u32::from_le_bytes([head[8], head[9], head[10], head[11]]) {
                0x1A2B_3C4D => false,
                0x4D3C_2B1A => true,
                _ => break,
            };
        } else if i == 0 {
            break; // not pcapng
        }
        let word = |b: &[u8]| {
            let w = [b[0], b[1], b[2], b[3]];
            if big {
                u32::from_be_bytes(w)
            } else {
                u32::from_le_bytes(w)
            }
        };
        let kind = word(&head[..4]);
        let total = word(&head[4..8]) as usize;
        if total < 12 || !total.is_multiple_of(4) || total > super::MAX_RECORD {
            break;
        }
        if matches!(kind, 2 | 3 | 6) {
            break; // the first packet
        }
        // The rest of the block (its first 4 body bytes are already in `head`).
        let mut rest = vec![0u8; total - 12];
        if r.read_exact(&mut rest).is_err() {
            break;
        }
        if kind != DECRYPTION_SECRETS {
            continue;
        }
        let (secrets_type, len) = (word(&head[8..12]), rest.get(..4).map(word));
        let data = len.and_then(|n| rest.get(4..4 + n as usize));
        if secrets_type == TLS_KEY_LOG
            && let Some(d) = data
            && out.len() + d.len() <= MAX_SECRETS
        {
            out.extend_from_slice(d);
            out.push(b'\n');
        }
        crate::tls::keylog::wipe(&mut rest);
    }
    Ok(out)
}
