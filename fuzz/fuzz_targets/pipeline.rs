//! Any bytes as a capture through the whole pipeline (decode, flows, reassembly, HTTP,
//! exchange JSON): never a panic, every exchange serialises to one JSON line.
#![no_main]
use apiwatch::capture::{FileSource, PacketSource};
use apiwatch::flow::FlowConfig;
use apiwatch::pipeline::Pipeline;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut src) = FileSource::from_reader("fuzz", Box::new(std::io::Cursor::new(data.to_vec()))) else {
        return;
    };
    let mut p = Pipeline::new(FlowConfig {
        max_flows: 64,
        ..FlowConfig::default()
    });
    let mut out = Vec::new();
    while let Ok(Some(pkt)) = src.next_packet() {
        p.packet(&pkt, &mut out);
    }
    p.finish(&mut out);
    for x in &out {
        let line = apiwatch::export::exchange_log::to_json(x);
        assert!(!line.contains('\n'));
    }
});
