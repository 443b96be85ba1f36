//! Chat templates: the family is recognised from the GGUF template text, and a turn is
//! written exactly as the family's Jinja template renders it (expected strings written out
//! from the templates' published layouts: Qwen2.5's ChatML, Gemma's, Llama 3's, Llama 2's,
//! Phi-3's).

use llm_engine::template::{Piece, Template, pieces_text};

const QWEN25: &str = "{%- if tools %}...{%- else %}\n    {%- if messages[0]['role'] == 'system' %}\n        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}\n    {%- else %}\n        {{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\\n' }}\n    {%- endif %}\n{%- endif %}{%- for message in messages %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}{%- endfor %}{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}";
const GEMMA: &str = "{{ bos_token }}{% for message in messages %}{{ '<start_of_turn>' + role + '\\n' + message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}";
const LLAMA3: &str = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";
const PHI3: &str = "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}";
const LLAMA2: &str = "{% for message in messages %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + message['content'] + ' [/INST]' }}{% endif %}{% endfor %}";

#[test]
fn families_are_recognised_from_the_template_text() {
    assert_eq!(Template::detect(Some(QWEN25)), Template::ChatMl);
    assert_eq!(Template::detect(Some(GEMMA)), Template::Gemma);
    assert_eq!(Template::detect(Some(LLAMA3)), Template::Llama3);
    assert_eq!(Template::detect(Some(LLAMA2)), Template::Llama2);
    assert_eq!(Template::detect(Some(PHI3)), Template::Phi3);
    assert_eq!(Template::detect(None), Template::Raw);
    assert_eq!(Template::detect(Some("{{ messages }}")), Template::Raw);
    assert_eq!(Template::default_system(Some(QWEN25)), Some("You are Qwen, created by Alibaba Cloud. You are a helpful assistant."));
    assert_eq!(Template::default_system(Some(GEMMA)), None);
    for name in ["raw", "chatml", "gemma", "llama3", "llama2", "phi3"] {
        assert_eq!(Template::from_name(name).unwrap().name(), name);
    }
    assert_eq!(Template::from_name("vicuna"), None);
}

fn turns(t: Template, system: Option<&str>, msgs: &[&str]) -> String {
    let mut s = String::new();
    for (i, m) in msgs.iter().enumerate() {
        let mut pieces = Vec::new();
        t.user_turn(system, m, i == 0, &mut pieces);
        // The messages are text pieces, never split or marked as control.
        assert!(pieces.contains(&Piece::Text(m)), "{t:?}: {pieces:?}");
        for p in &pieces {
            if let Piece::Control(c) = p {
                assert!(t.control_pieces().contains(c), "{t:?} writes {c}, not in its control_pieces()");
            }
        }
        s.push_str(&pieces_text(&pieces));
        // The model's reply and its end-of-turn token, as the context holds them.
        s.push_str("REPLY");
        s.push_str(t.end_of_turn().unwrap_or(""));
    }
    s
}

#[test]
fn turns_are_written_as_the_templates_render_them() {
    let sys = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
    assert_eq!(
        turns(Template::ChatMl, Some(sys), &["Hi", "And?"]),
        format!(
            "<|im_start|>system\n{sys}<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\nREPLY<|im_end|>\n<|im_start|>user\nAnd?<|im_end|>\n<|im_start|>assistant\nREPLY<|im_end|>"
        )
    );
    assert_eq!(
        turns(Template::Gemma, None, &["Hi", "And?"]),
        "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\nREPLY<end_of_turn>\n<start_of_turn>user\nAnd?<end_of_turn>\n<start_of_turn>model\nREPLY<end_of_turn>"
    );
    assert_eq!(
        turns(Template::Llama3, Some("Be brief."), &["Hi"]),
        "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\nREPLY<|eot_id|>"
    );
    assert_eq!(turns(Template::Llama2, None, &["Hi"]), "[INST] Hi [/INST]REPLY</s>");
    assert_eq!(
        turns(Template::Phi3, Some("Be brief."), &["Hi", "And?"]),
        "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nREPLY<|end|>\n<|user|>\nAnd?<|end|>\n<|assistant|>\nREPLY<|end|>"
    );
    assert_eq!(turns(Template::Raw, None, &["Hi", "there"]), "Hi\nREPLYthere\nREPLY");
}
