//! Chat formats against llama.cpp's `llama_chat_apply_template` (fixture from
//! `tools/chat_templates.py`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use llamux_core::chat::{ChatTemplate, Message, Role};

mod common;

#[test]
fn templates_match_llama_cpp() {
    let fx: serde_json::Value = serde_json::from_str(include_str!("fixtures/chat_templates.json")).unwrap();
    let msgs: Vec<Message> = fx["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| Message {
            role: match m[0].as_str().unwrap() {
                "system" => Role::System,
                "user" => Role::User,
                _ => Role::Assistant,
            },
            content: m[1].as_str().unwrap().to_string(),
        })
        .collect();
    let mut n = 0;
    for (name, want) in fx["templates"].as_object().unwrap() {
        let t = ChatTemplate::from_name(name).unwrap();
        assert_eq!(t.apply(&msgs, true), want["with_system"].as_str().unwrap(), "{name} with system");
        assert_eq!(t.apply(&msgs[1..], true), want["no_system"].as_str().unwrap(), "{name} without system");
        n += 1;
    }
    assert_eq!(n, 5);
}

#[test]
fn detection_from_jinja_markers() {
    assert_eq!(ChatTemplate::detect("{% for m in messages %}<|im_start|>{{ m.role }}"), Some(ChatTemplate::ChatMl));
    assert_eq!(ChatTemplate::detect("{{ '<start_of_turn>' + role }}"), Some(ChatTemplate::Gemma));
    assert_eq!(ChatTemplate::detect("<|start_header_id|>x<|end_header_id|>"), Some(ChatTemplate::Llama3));
    assert_eq!(ChatTemplate::detect("{{ '[INST] ' + content }}"), Some(ChatTemplate::Llama2));
    assert_eq!(ChatTemplate::detect("<|user|>{{x}}<|end|><|assistant|>"), Some(ChatTemplate::Phi3));
    assert_eq!(ChatTemplate::detect("plain"), None);
}

/// SmolLM2-135M-Instruct's own template (`tokenizer.chat_template`) is recognized as ChatML, the
/// format `llamux chat` then uses.
#[test]
fn smollm2_template_is_chatml() {
    let Some(path) = common::asset("LLAMUX_SMOLLM2") else { return };
    let bytes = std::fs::read(path).unwrap();
    let g = llamux_core::gguf::Gguf::parse(&bytes).unwrap();
    let template = g.get_str("tokenizer.chat_template").unwrap();
    assert_eq!(ChatTemplate::detect(template), Some(ChatTemplate::ChatMl));
}
