//! llama.cpp's file types (`general.file_type`) and the per-tensor type mix `llama-quantize`
//! chooses for each.

use crate::GgmlType;

/// `llama_ftype`: the nominal quantization of a whole model file.
#[allow(non_camel_case_types, missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum FileType {
    F32 = 0,
    F16 = 1,
    Q4_0 = 2,
    Q4_1 = 3,
    Q8_0 = 7,
    Q5_0 = 8,
    Q5_1 = 9,
    Q2_K = 10,
    Q3_K_S = 11,
    Q3_K_M = 12,
    Q3_K_L = 13,
    Q4_K_S = 14,
    Q4_K_M = 15,
    Q5_K_S = 16,
    Q5_K_M = 17,
    Q6_K = 18,
    BF16 = 32,
}

/// What a weight tensor is, as far as the quantization mix is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TensorRole {
    /// `token_embd.weight`.
    TokenEmbedding,
    /// `output.weight`.
    Output,
    /// `blk.N.attn_v.weight`.
    AttnV {
        /// Layer index.
        layer: u32,
    },
    /// `blk.N.ffn_down.weight`.
    FfnDown {
        /// Layer index.
        layer: u32,
    },
    /// Any other 2-D weight (attn_q/k/output, ffn_gate/up).
    OtherMatrix,
    /// Norms, biases and other 1-D tensors (kept in F32).
    Vector,
}

impl TensorRole {
    /// The role of a tensor from its GGUF name and dimension count.
    pub fn from_name(name: &str, n_dims: usize) -> Self {
        if n_dims < 2 {
            return TensorRole::Vector;
        }
        match name {
            "token_embd.weight" => return TensorRole::TokenEmbedding,
            "output.weight" => return TensorRole::Output,
            _ => {}
        }
        let layer =
            name.strip_prefix("blk.").and_then(|rest| rest.split('.').next()).and_then(|n| n.parse::<u32>().ok());
        match (layer, name.ends_with(".attn_v.weight"), name.ends_with(".ffn_down.weight")) {
            (Some(layer), true, _) => TensorRole::AttnV { layer },
            (Some(layer), _, true) => TensorRole::FfnDown { layer },
            _ => TensorRole::OtherMatrix,
        }
    }
}

impl FileType {
    /// Every file type, in id order.
    pub const ALL: [FileType; 17] = {
        use FileType::*;
        [
            F32, F16, Q4_0, Q4_1, Q8_0, Q5_0, Q5_1, Q2_K, Q3_K_S, Q3_K_M, Q3_K_L, Q4_K_S, Q4_K_M, Q5_K_S, Q5_K_M, Q6_K,
            BF16,
        ]
    };

    /// The numeric id stored in `general.file_type`.
    pub fn id(self) -> u32 {
        self as u32
    }

    /// The file type with id `id`.
    pub fn from_id(id: u32) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.id() == id)
    }

    /// llama.cpp's name (`Q4_K_M`, `F16`, …).
    pub fn name(self) -> &'static str {
        use FileType::*;
        match self {
            F32 => "F32",
            F16 => "F16",
            Q4_0 => "Q4_0",
            Q4_1 => "Q4_1",
            Q8_0 => "Q8_0",
            Q5_0 => "Q5_0",
            Q5_1 => "Q5_1",
            Q2_K => "Q2_K",
            Q3_K_S => "Q3_K_S",
            Q3_K_M => "Q3_K_M",
            Q3_K_L => "Q3_K_L",
            Q4_K_S => "Q4_K_S",
            Q4_K_M => "Q4_K_M",
            Q5_K_S => "Q5_K_S",
            Q5_K_M => "Q5_K_M",
            Q6_K => "Q6_K",
            BF16 => "BF16",
        }
    }

    /// The file type called `name` (ASCII case ignored).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.name().eq_ignore_ascii_case(name))
    }

    /// The type most matrices get.
    pub fn base_type(self) -> GgmlType {
        use FileType::*;
        match self {
            F32 => GgmlType::F32,
            F16 => GgmlType::F16,
            BF16 => GgmlType::BF16,
            Q4_0 => GgmlType::Q4_0,
            Q4_1 => GgmlType::Q4_1,
            Q8_0 => GgmlType::Q8_0,
            Q5_0 => GgmlType::Q5_0,
            Q5_1 => GgmlType::Q5_1,
            Q2_K => GgmlType::Q2_K,
            Q3_K_S | Q3_K_M | Q3_K_L => GgmlType::Q3_K,
            Q4_K_S | Q4_K_M => GgmlType::Q4_K,
            Q5_K_S | Q5_K_M => GgmlType::Q5_K,
            Q6_K => GgmlType::Q6_K,
        }
    }

    /// The type `llama-quantize` gives a tensor of `role` in a model of `n_layer` blocks, for
    /// llama-architecture models without an importance matrix (llama.cpp's
    /// `llama_tensor_get_type`, restricted to the mixes this engine writes).
    pub fn tensor_type(self, role: TensorRole, n_layer: u32, row_len: u64) -> GgmlType {
        use FileType::*;
        if role == TensorRole::Vector {
            return GgmlType::F32;
        }
        let base = self.base_type();
        if !row_len.is_multiple_of(base.block_size() as u64) {
            // K-quants need rows of 256; llama.cpp falls back to a legacy type of similar size.
            return match base {
                GgmlType::Q2_K | GgmlType::Q3_K => GgmlType::IQ4_NL,
                GgmlType::Q4_K => GgmlType::Q5_0,
                GgmlType::Q5_K => GgmlType::Q5_1,
                GgmlType::Q6_K => GgmlType::Q8_0,
                t => t,
            };
        }
        // Layers that get more bits in the _M mixes: the first and last eighth, and every third
        // one in between.
        let more_bits = |i: u32| i < n_layer / 8 || i >= 7 * n_layer / 8 || (i - n_layer / 8) % 3 == 2;
        match role {
            TensorRole::Output => match self {
                F32 | F16 | BF16 | Q8_0 => base,
                _ => GgmlType::Q6_K,
            },
            TensorRole::AttnV { layer } => match self {
                Q2_K => GgmlType::Q4_K,
                Q3_K_M => {
                    if layer < 2 {
                        GgmlType::Q5_K
                    } else {
                        GgmlType::Q4_K
                    }
                }
                Q3_K_L => GgmlType::Q5_K,
                Q4_K_M | Q5_K_M if more_bits(layer) => GgmlType::Q6_K,
                Q4_K_S if layer < 4 => GgmlType::Q5_K,
                _ => base,
            },
            TensorRole::FfnDown { layer } => match self {
                Q3_K_M | Q3_K_L => {
                    if layer < n_layer / 16 {
                        GgmlType::Q5_K
                    } else if self == Q3_K_L || more_bits(layer) {
                        GgmlType::Q4_K
                    } else {
                        GgmlType::Q3_K
                    }
                }
                Q4_K_M | Q5_K_M if more_bits(layer) => GgmlType::Q6_K,
                Q4_K_S if layer < n_layer / 8 => GgmlType::Q5_K,
                _ => base,
            },
            _ => base,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn q4_k_m_mix_for_tinyllama_shape() {
        let f = FileType::Q4_K_M;
        let v: alloc::vec::Vec<u32> =
            (0..22).filter(|&l| f.tensor_type(TensorRole::AttnV { layer: l }, 22, 2048) == GgmlType::Q6_K).collect();
        // n_layer / 8 = 2, 7 n_layer / 8 = 19: layers 0, 1, then 4, 7, 10, 13, 16, then 19, 20, 21.
        assert_eq!(v, [0, 1, 4, 7, 10, 13, 16, 19, 20, 21]);
        assert_eq!(f.tensor_type(TensorRole::Output, 22, 2048), GgmlType::Q6_K);
        assert_eq!(f.tensor_type(TensorRole::TokenEmbedding, 22, 2048), GgmlType::Q4_K);
        assert_eq!(f.tensor_type(TensorRole::OtherMatrix, 22, 2048), GgmlType::Q4_K);
        assert_eq!(f.tensor_type(TensorRole::Vector, 22, 2048), GgmlType::F32);
        assert_eq!(f.tensor_type(TensorRole::OtherMatrix, 22, 100), GgmlType::Q5_0);
    }

    #[test]
    fn roles_from_names() {
        assert_eq!(TensorRole::from_name("blk.12.attn_v.weight", 2), TensorRole::AttnV { layer: 12 });
        assert_eq!(TensorRole::from_name("blk.3.ffn_down.weight", 2), TensorRole::FfnDown { layer: 3 });
        assert_eq!(TensorRole::from_name("blk.3.ffn_up.weight", 2), TensorRole::OtherMatrix);
        assert_eq!(TensorRole::from_name("blk.3.attn_norm.weight", 1), TensorRole::Vector);
        assert_eq!(TensorRole::from_name("token_embd.weight", 2), TensorRole::TokenEmbedding);
        assert_eq!(TensorRole::from_name("output.weight", 2), TensorRole::Output);
        assert_eq!(TensorRole::from_name("blk.x.attn_v.weight", 2), TensorRole::OtherMatrix);
    }

    #[test]
    fn ids_and_names_round_trip() {
        for f in FileType::ALL {
            assert_eq!(FileType::from_id(f.id()), Some(f));
            assert_eq!(FileType::from_name(&f.name().to_lowercase()), Some(f));
        }
    }
}
