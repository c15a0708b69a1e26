"""Text encoders: MiniLM (the pinned package), CLAP (a tiny random model built here),
the cache, the registry and prompt checking."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from engine import KeyTable
from model import (
    MAX_PROMPT_CHARS,
    ClapEncoder,
    ModelError,
    Predictor,
    PromptError,
    check_prompt,
    encoder_names,
    get_encoder,
)
from model._hf import check_files
from model.minilm import MINILM_FILES, minilm_folder
from tests.model.conftest import PROMPTS, make_checkpoint

# ---- prompts -------------------------------------------------------------------------


def test_check_prompt_cleans_control_characters_and_whitespace():
    assert check_prompt("  warm\tbrass\n\x00pad\x1b ") == "warm brass pad"
    assert check_prompt("é bell ♪") == "é bell ♪"
    assert len(check_prompt("x" * MAX_PROMPT_CHARS)) == MAX_PROMPT_CHARS


@pytest.mark.parametrize(
    "prompt, message",
    [
        (None, "prompt must be a str, got NoneType"),
        (b"bell", "prompt must be a str, got bytes"),
        ("", "prompt must contain some text"),
        (" \n\t\x07 ", "prompt must contain some text"),
        ("x" * (MAX_PROMPT_CHARS + 1), "at most 1000 characters, got 1001"),
    ],
)
def test_check_prompt_refuses(prompt, message):
    with pytest.raises(PromptError, match=message):
        check_prompt(prompt)
    assert issubclass(PromptError, ValueError) and issubclass(PromptError, ModelError)


# ---- registry ------------------------------------------------------------------------


def test_registry():
    assert {"minilm", "clap"} <= set(encoder_names())
    with pytest.raises(
        ModelError, match="unknown text encoder 'bert'; known encoders: .*clap.*minilm"
    ):
        get_encoder("bert")


# ---- MiniLM --------------------------------------------------------------------------


def test_minilm_embeddings(minilm):
    assert minilm.name == "minilm" and minilm.dim == 384
    assert get_encoder("minilm") is minilm  # built once per process
    emb = minilm.encode(PROMPTS)
    assert emb.shape == (len(PROMPTS), 384) and emb.dtype == np.float32
    assert np.allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    # batched and one-by-one agree (padding is masked out of the mean)
    minilm.cache_clear()
    single = np.concatenate([minilm.encode([p]) for p in PROMPTS])
    assert np.allclose(single, emb, atol=1e-5)
    # it means something: related words are nearer than unrelated ones
    a, b, c = minilm.encode(["a bright ringing bell", "a chiming bell", "a deep distorted bass"])
    assert a @ b > a @ c


def test_minilm_matches_reference_mean_pooling(minilm):
    """Same numbers as the model card's recipe (AutoModel + masked mean + L2 norm)."""
    texts = ["a warm brass pad", "short"]
    tok, net = minilm._tokenizer, minilm._model
    batch = tok(texts, padding=True, truncation=True, return_tensors="pt")
    with torch.no_grad():
        hidden = net(**batch)[0]
    mask = batch["attention_mask"].unsqueeze(-1).float()
    ref = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=1).numpy()
    minilm.cache_clear()
    assert np.allclose(minilm.encode(texts), ref, atol=1e-6)


def test_cache_serves_repeats_without_encoding(minilm, monkeypatch):
    minilm.encode(["a glassy pluck"])
    calls = []
    real = type(minilm)._encode
    monkeypatch.setattr(minilm, "_encode", lambda texts: calls.append(texts) or real(minilm, texts))
    again = minilm.encode(["a glassy pluck", "  a glassy\npluck ", "a new one"])
    assert calls == [["a new one"]]  # the repeat (even re-spaced) costs nothing
    assert np.array_equal(again[0], again[1])
    start = time.perf_counter()
    minilm.encode(["a glassy pluck"])
    assert time.perf_counter() - start < 0.05
    with pytest.raises(ModelError, match="list of texts"):
        minilm.encode("a glassy pluck")


def test_minilm_files_are_pinned(tmp_path):
    folder = minilm_folder()
    assert (folder / "model.safetensors").is_file()
    assert set(MINILM_FILES) >= {"model.safetensors", "config.json", "tokenizer.json"}
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="has sha256 .* expected 953f9c0d"):
        check_files(tmp_path, {"config.json": MINILM_FILES["config.json"]}, "MiniLM weights")
    with pytest.raises(ModelError, match="missing"):
        check_files(tmp_path, {"model.safetensors": "0" * 64}, "MiniLM weights")


# ---- CLAP ----------------------------------------------------------------------------

_WORDS = ["<pad>", "<s>", "</s>", "<unk>", "a", "bright", "bell", "warm", "brass", "pad", "bass"]


@pytest.fixture(scope="module")
def tiny_clap(tmp_path_factory):
    """A random-weight CLAP (text and audio towers) saved as a real one would be."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import ClapConfig, ClapModel, PreTrainedTokenizerFast

    folder = tmp_path_factory.mktemp("clap")
    tk = Tokenizer(models.WordLevel({w: i for i, w in enumerate(_WORDS)}, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Whitespace()
    tk.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 1), ("</s>", 2)]
    )
    tok = PreTrainedTokenizerFast(
        tokenizer_object=tk, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
        unk_token="<unk>", model_max_length=64,
    )  # fmt: skip
    torch.manual_seed(0)
    config = ClapConfig(
        text_config=dict(
            vocab_size=len(_WORDS), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=32, max_position_embeddings=40, pad_token_id=0,
        ),
        audio_config=dict(
            hidden_size=8, patch_embeds_hidden_size=8, depths=[1], num_attention_heads=[1],
            window_size=2, spec_size=16, num_mel_bins=8, patch_stride=(4, 4), patch_size=4,
        ),
        projection_dim=24,
    )  # fmt: skip
    model = ClapModel(config).eval()
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder, model, tok


def test_clap_from_a_folder_matches_transformers(tiny_clap):
    folder, model, tok = tiny_clap
    enc = ClapEncoder(folder)
    assert enc.name == "clap" and enc.dim == 24
    texts = ["a bright bell", "warm brass pad"]
    emb = enc.encode(texts)
    assert emb.shape == (2, 24) and emb.dtype == np.float32
    batch = tok(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model.get_text_features(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
        )
    ref = out if torch.is_tensor(out) else out.pooler_output
    ref = torch.nn.functional.normalize(ref, dim=-1).numpy()
    assert np.allclose(emb, ref, atol=1e-5)  # the trained weights were loaded, not fresh ones


def test_clap_checkpoint_and_predictor(tiny_clap, tmp_path):
    enc = get_encoder("clap", path=tiny_clap[0])
    ckpt = make_checkpoint(tmp_path / "ck", enc)
    predictor = Predictor.load(ckpt, encoder=enc)
    table = predictor.patch("a bright bell")
    assert isinstance(table, KeyTable) and table.is_flat and not predictor.key_tracked
    assert table == predictor.patch("a bright bell")  # deterministic at temperature 0
    KeyTable(table.keys, table.velocities, table.values)  # in range as it is
    batch = predictor.patches(["a bright bell", "warm brass pad"])
    assert np.allclose(batch[0].values, table.values, rtol=1e-5)  # float32, batch against one
    with pytest.raises(
        ModelError, match=r"trained with encoder 'clap' \(24-d\), got 'minilm' \(384-d\)"
    ):
        Predictor.load(ckpt, encoder=get_encoder("minilm"))


def test_clap_without_weights_fails_at_once_and_says_how(tmp_path, monkeypatch):
    monkeypatch.delenv("PROMPTSYNTH_CLAP_PATH", raising=False)
    start = time.perf_counter()
    with pytest.raises(
        ModelError, match=r"not in the Hugging Face cache.*hf download laion/clap-htsat-fused"
    ):
        ClapEncoder(cache_dir=tmp_path / "empty-cache")
    assert time.perf_counter() - start < 5.0
    with pytest.raises(ModelError, match="does not exist"):
        ClapEncoder(tmp_path / "nowhere")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(ModelError, match="lacks model.safetensors"):
        ClapEncoder(tmp_path / "half")
    monkeypatch.setenv("PROMPTSYNTH_CLAP_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(ModelError, match="nowhere does not exist"):
        ClapEncoder()


def test_clap_from_the_hugging_face_cache(tiny_clap, tmp_path, monkeypatch):
    """The cache layout `hf download` leaves: models--org--name/{refs/main,snapshots/REV}."""
    import shutil

    monkeypatch.delenv("PROMPTSYNTH_CLAP_PATH", raising=False)
    rev = "0" * 40
    repo = tmp_path / "models--laion--clap-htsat-fused"
    shutil.copytree(tiny_clap[0], repo / "snapshots" / rev)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    enc = ClapEncoder(cache_dir=tmp_path)
    assert enc.dim == 24 and "laion/clap-htsat-fused" in enc.source
