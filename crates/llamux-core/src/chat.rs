//! Chat prompt formats: the common templates llama.cpp recognizes in `tokenizer.chat_template`,
//! formatted exactly as its `llama_chat_apply_template` does.

use alloc::string::String;

/// Who said a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Instructions for the assistant.
    System,
    /// The person.
    User,
    /// The model.
    Assistant,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Speaker.
    pub role: Role,
    /// Text.
    pub content: String,
}

/// A supported chat format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChatTemplate {
    /// `<|im_start|>role … <|im_end|>` (Qwen, many fine-tunes).
    ChatMl,
    /// `<start_of_turn>user … <end_of_turn>` (Gemma).
    Gemma,
    /// `<|start_header_id|>role<|end_header_id|>` (Llama 3).
    Llama3,
    /// `[INST] … [/INST]` (Llama 2, Mistral).
    Llama2,
    /// `<|user|> … <|end|>` (Phi-3).
    Phi3,
}

impl ChatTemplate {
    /// Recognizes the format of a Jinja template from the markers it uses (as llama.cpp does).
    pub fn detect(template: &str) -> Option<Self> {
        let has = |s: &str| template.contains(s);
        if has("<|im_start|>") {
            Some(ChatTemplate::ChatMl)
        } else if has("<start_of_turn>") {
            Some(ChatTemplate::Gemma)
        } else if has("<|start_header_id|>") && has("<|end_header_id|>") {
            Some(ChatTemplate::Llama3)
        } else if has("<|assistant|>") && has("<|end|>") {
            Some(ChatTemplate::Phi3)
        } else if has("[INST]") {
            Some(ChatTemplate::Llama2)
        } else {
            None
        }
    }

    /// The template llama.cpp calls `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "chatml" => ChatTemplate::ChatMl,
            "gemma" => ChatTemplate::Gemma,
            "llama3" => ChatTemplate::Llama3,
            "llama2" => ChatTemplate::Llama2,
            "phi3" => ChatTemplate::Phi3,
            _ => return None,
        })
    }

    /// Formats `messages`; with `add_assistant`, ends with the opening of the model's turn.
    pub fn apply(self, messages: &[Message], add_assistant: bool) -> String {
        let mut out = String::new();
        match self {
            ChatTemplate::ChatMl => {
                for m in messages {
                    out += "<|im_start|>";
                    out += m.role.name();
                    out += "\n";
                    out += &m.content;
                    out += "<|im_end|>\n";
                }
                if add_assistant {
                    out += "<|im_start|>assistant\n";
                }
            }
            ChatTemplate::Gemma => {
                // Gemma has no system role: the system text opens the first user turn.
                let mut system = String::new();
                for m in messages {
                    match m.role {
                        Role::System => {
                            system += &m.content;
                            system += "\n\n";
                        }
                        Role::User | Role::Assistant => {
                            out += "<start_of_turn>";
                            out += if m.role == Role::User { "user" } else { "model" };
                            out += "\n";
                            if m.role == Role::User {
                                out += &system;
                                system.clear();
                            }
                            out += m.content.trim();
                            out += "<end_of_turn>\n";
                        }
                    }
                }
                if add_assistant {
                    out += "<start_of_turn>model\n";
                }
            }
            ChatTemplate::Llama3 => {
                for m in messages {
                    out += "<|start_header_id|>";
                    out += m.role.name();
                    out += "<|end_header_id|>\n\n";
                    out += m.content.trim();
                    out += "<|eot_id|>";
                }
                if add_assistant {
                    out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
                }
            }
            ChatTemplate::Llama2 => {
                let mut system = String::new();
                for m in messages {
                    match m.role {
                        Role::System => {
                            system += &m.content;
                            system += "\n";
                        }
                        Role::User => {
                            out += "[INST] ";
                            out += &system;
                            system.clear();
                            out += &m.content;
                            out += " [/INST]";
                        }
                        Role::Assistant => {
                            out += &m.content;
                            out += "</s>";
                        }
                    }
                }
            }
            ChatTemplate::Phi3 => {
                for m in messages {
                    out += "<|";
                    out += m.role.name();
                    out += "|>\n";
                    out += &m.content;
                    out += "<|end|>\n";
                }
                if add_assistant {
                    out += "<|assistant|>\n";
                }
            }
        }
        out
    }
}
