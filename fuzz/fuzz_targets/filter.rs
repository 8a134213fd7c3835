//! Capture filters: any text through the built-in compiler, and any program through
//! the BPF interpreter. Never a panic; a program the compiler accepts only jumps
//! forward within itself and ends in a return, and running it on any bytes ends.
#![no_main]
use apiwatch::capture::BpfInsn;
use apiwatch::capture::bpf::{Program, compile_builtin};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (text, packet) = match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    if let Ok(expr) = std::str::from_utf8(text) {
        for link in [0, 1, 101, 113, 276] {
            if let Ok(p) = compile_builtin(expr, link) {
                let n = p.0.len();
                assert!(n <= 4096 && n >= 2);
                for (pc, i) in p.0.iter().enumerate() {
                    if i.code & 0x07 == 0x05 && i.code & 0xf0 != 0 {
                        assert!(pc + 1 + usize::from(i.jt.max(i.jf)) < n, "jump past the end");
                    }
                }
                assert_eq!(p.0[n - 1].code & 0x07, 0x06, "must end in a return");
                let _ = p.matches(packet);
            }
        }
    }
    // Raw instructions: the interpreter must cope with anything.
    let prog: Vec<BpfInsn> = data
        .chunks_exact(8)
        .map(|c| BpfInsn {
            code: u16::from_le_bytes([c[0], c[1]]),
            jt: c[2],
            jf: c[3],
            k: u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
        })
        .collect();
    let _ = Program(prog).matches(packet);
});
