//! Any bytes as a capture through the whole pipeline (decode, flows, reassembly, HTTP,
//! exchange JSON, detection): never a panic, every exchange serialises to one JSON
//! line. Run with `-a` (fuzz/run.sh does) so overflow on packet time is caught.
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
    // Every exchange, hostile timestamps included, also reaches the detectors.
    let mut engine = apiwatch::detect::Engine::new(apiwatch::detect::DetectConfig {
        max_clients: 16,
        learning_period: 1_000_000_000,
        ..Default::default()
    });
    let mut alerts = Vec::new();
    for x in &out {
        let line = apiwatch::export::exchange_log::to_json(x);
        assert!(!line.contains('\n'));
        engine.observe(x, &mut alerts);
    }
    engine.finish(&mut alerts);
});
