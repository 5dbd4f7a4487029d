//! Property tests of the compact streaming updates: for generated pi streams (text, thinking
//! and tool-call deltas, usage changes, a new message, an abort mid-stream, lines that are not
//! updates), every line decodes back to exactly the bytes pi wrote, and the coded form of a
//! long answer is a small fraction of it; and a client in compact mode, applying the patches
//! (`piface_coordinator::frames::compact`), holds pi's partial message after every update.

use bytes::Bytes;
use piface_shared::delta::{advance, Decoder, Encoder};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Step {
    Text(String),
    Thinking(String),
    ToolArgs(String),
    Usage(u64, f64),
    NewBlock(u8),
    NewMessage,
    Abort,
    Other,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => "[a-zé \"\\\\\n{}]{0,12}".prop_map(Step::Text),
        2 => "[a-z .]{0,8}".prop_map(Step::Thinking),
        2 => "[a-z0-9\":,]{0,6}".prop_map(Step::ToolArgs),
        1 => (0u64..5000, 0.0f64..1.0).prop_map(|(o, c)| Step::Usage(o, c)),
        1 => (0u8..3).prop_map(Step::NewBlock),
        1 => Just(Step::NewMessage),
        1 => Just(Step::Abort),
        1 => Just(Step::Other),
    ]
}

#[derive(Default)]
struct Message {
    blocks: Vec<(u8, String)>, // 0 text, 1 thinking, 2 tool call (arguments text)
    output: u64,
    cost: f64,
    stop: &'static str,
}

fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

impl Message {
    fn json(&self) -> String {
        let blocks: Vec<String> = self
            .blocks
            .iter()
            .map(|(kind, s)| match kind {
                0 => format!(r#"{{"type":"text","text":{}}}"#, q(s)),
                1 => format!(r#"{{"type":"thinking","thinking":{}}}"#, q(s)),
                _ => format!(r#"{{"type":"toolCall","id":"c1","name":"bash","arguments":{{"partial":{}}}}}"#, q(s)),
            })
            .collect();
        format!(
            r#"{{"role":"assistant","content":[{}],"usage":{{"output":{},"cost":{{"total":{}}}}},"stopReason":"{}"}}"#,
            blocks.join(","),
            self.output,
            self.cost,
            self.stop
        )
    }
}

fn lines(steps: &[Step]) -> Vec<Bytes> {
    let mut m = Message { stop: "stop", ..Default::default() };
    m.blocks.push((0, String::new()));
    let mut out = Vec::new();
    for s in steps {
        let mut delta = String::new();
        match s {
            Step::Text(t) | Step::Thinking(t) | Step::ToolArgs(t) => {
                if let Some(last) = m.blocks.last_mut() {
                    last.1.push_str(t);
                }
                delta = t.clone();
            }
            Step::Usage(o, c) => {
                m.output = *o;
                m.cost = *c;
            }
            Step::NewBlock(k) => m.blocks.push((*k, String::new())),
            Step::NewMessage => m = Message { stop: "stop", blocks: vec![(0, String::new())], ..Default::default() },
            Step::Abort => m.stop = "aborted",
            Step::Other => {
                out.push(Bytes::from(format!(r#"{{"type":"tool_execution_update","partialResult":{}}}"#, m.json())));
                continue;
            }
        }
        let j = m.json();
        out.push(Bytes::from(format!(
            r#"{{"type":"message_update","assistantMessageEvent":{{"type":"text_delta","contentIndex":0,"delta":{},"partial":{j}}},"message":{j}}}"#,
            q(&delta)
        )));
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn a_compact_client_holds_pi_s_partial_after_every_update(steps in proptest::collection::vec(step(), 1..120)) {
        use piface_coordinator::frames::compact::{apply, Compactor, Op};
        let mut compactor = Compactor::default();
        let mut client: Option<serde_json::Value> = None;
        for line in lines(&steps) {
            let pi: serde_json::Value = serde_json::from_slice(&line).unwrap();
            let kind = pi["type"].as_str().unwrap().to_string();
            match compactor.push(&kind, &line) {
                Some(frame) => {
                    let frame: serde_json::Value = serde_json::from_slice(&frame).unwrap();
                    prop_assert!(frame.get("message").is_none());
                    let ops: Vec<Op> =
                        frame["piface_patch"].as_array().unwrap().iter().map(|o| Op::from_json(o).unwrap()).collect();
                    let base = client.as_mut().expect("a patch only follows an update the client has");
                    apply(base, &ops).unwrap();
                    prop_assert_eq!(&*base, &pi["message"]);
                }
                None if kind == "message_update" => client = Some(pi["message"].clone()),
                None => client = None,
            }
        }
    }

    #[test]
    fn every_line_decodes_to_pi_s_bytes(steps in proptest::collection::vec(step(), 1..120)) {
        let mut enc = Encoder::default();
        let mut dec = Decoder::default();
        for line in lines(&steps) {
            match enc.encode(&line) {
                Some((skeleton, delta)) => prop_assert_eq!(dec.decode(&skeleton, &delta).unwrap(), line),
                None => {
                    let update: &[u8] = br#"{"type":"message_update""#;
                    prop_assert!(!line.starts_with(update), "an update passed uncoded");
                }
            }
        }
    }

    #[test]
    fn a_stream_joined_in_the_middle_decodes_from_the_encoder_state(
        steps in proptest::collection::vec(step(), 2..60),
        cut in 0usize..60,
    ) {
        let all = lines(&steps);
        let cut = cut % all.len();
        let mut enc = Encoder::default();
        let mut coded = Vec::new();
        let mut base = None;
        for (i, line) in all.iter().enumerate() {
            if i == cut {
                base = Some(enc.slots().clone());
            }
            coded.push(enc.encode(line));
        }
        // A journal that dropped the lines before `cut` moves its base past them instead.
        let mut moved = Default::default();
        for c in coded[..cut].iter().flatten() {
            advance(&mut moved, &c.1).unwrap();
        }
        prop_assert_eq!(&moved, base.as_ref().unwrap());
        let mut dec = Decoder::default();
        dec.reset(moved);
        for (line, c) in all[cut..].iter().zip(&coded[cut..]) {
            if let Some((skeleton, delta)) = c {
                prop_assert_eq!(&dec.decode(skeleton, delta).unwrap(), line);
            }
        }
    }
}

#[test]
fn a_5000_token_answer_codes_to_under_one_percent() {
    let steps: Vec<Step> = (0..5_000).map(|i| Step::Text(format!("t{i} "))).collect();
    let all = lines(&steps);
    let full: usize = all.iter().map(Bytes::len).sum();
    let mut enc = Encoder::default();
    let coded: usize = all
        .iter()
        .map(|l| match enc.encode(l) {
            Some((s, d)) => s.len() + d.cuts.iter().map(|c| c.insert.len() + 14).sum::<usize>(),
            None => l.len(),
        })
        .sum();
    assert!(coded * 100 < full, "{coded} bytes coded vs {full}");
}
