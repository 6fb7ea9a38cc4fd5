"""Vocabularies: bytes, SentencePiece (a model trained here), HF tokenizer.json vs transformers."""

import pytest
import tensorflow as tf

from mode_jax.data.vocab import HFTokenizerVocabulary, make_vocab

TEXT = ["the cat sat on the mat", "a dog ate the bone", "step 1: add 2 and 3\nstep 2: done"]


@pytest.fixture(scope="module")
def tokenizer_json(tmp_path_factory):
  from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
  tok = Tokenizer(models.BPE(unk_token="<unk>"))
  tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
  tok.decoder = decoders.ByteLevel()
  trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<pad>", "<eos>", "<unk>"],
                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
  tok.train_from_iterator(TEXT * 20, trainer)
  path = tmp_path_factory.mktemp("tok") / "tokenizer.json"
  tok.save(str(path))
  return str(path)


def test_bytes_round_trip_and_ids():
  v = make_vocab("bytes")
  assert v.vocab_size == 259 and v.eos_id == 1
  assert v.encode("hé") == [ord("h") + 3, 0xC3 + 3, 0xA9 + 3]
  assert v.decode(v.encode(TEXT[2])) == TEXT[2]


def test_hf_tokenizer_matches_transformers(tokenizer_json):
  from transformers import PreTrainedTokenizerFast
  ref = PreTrainedTokenizerFast(tokenizer_file=tokenizer_json)
  v = make_vocab("hf", tokenizer_json)
  assert v.eos_id == 1 and v.unk_id == 2 and v.vocab_size == len(ref)
  for s in TEXT + ["unseen wörds!"]:
    ids = v.encode(s)
    assert ids == ref.encode(s, add_special_tokens=False)
    assert v.decode(ids) == ref.decode(ids)
    assert v.decode(ids) == s
  # decode stops at EOS (seqio convention)
  assert v.decode(v.encode("the cat") + [v.eos_id] + v.encode("dog")) == "the cat"


def test_hf_tokenizer_tf_ops_agree_with_python(tokenizer_json):
  v = make_vocab("hf", tokenizer_json)
  ids = v.encode_tf(tf.constant(TEXT[0]))
  assert ids.numpy().tolist() == v.encode(TEXT[0])
  assert v.decode_tf(ids).numpy().decode() == TEXT[0]
  ds = tf.data.Dataset.from_tensor_slices(TEXT).map(v.encode_tf)
  assert [x.tolist() for x in ds.as_numpy_iterator()] == [v.encode(t) for t in TEXT]


def test_sentencepiece_model(tmp_path):
  import sentencepiece as spm
  corpus = tmp_path / "corpus.txt"
  corpus.write_text("\n".join(TEXT * 30))
  spm.SentencePieceTrainer.train(input=str(corpus), model_prefix=str(tmp_path / "sp"),
                                 vocab_size=28, pad_id=0, eos_id=1, unk_id=2, bos_id=-1)
  v = make_vocab("sentencepiece", str(tmp_path / "sp.model"))
  ids = v.encode(TEXT[0])
  assert v.decode(ids) == TEXT[0] and v.eos_id == 1
  ref = spm.SentencePieceProcessor(model_file=str(tmp_path / "sp.model"))
  assert ids == ref.encode(TEXT[0])


def test_bad_vocab_inputs(tmp_path):
  with pytest.raises(FileNotFoundError, match="tokenizer.json not found"):
    make_vocab("hf", str(tmp_path / "tokenizer.json"))
  (tmp_path / "bad.json").write_text("{not json")
  with pytest.raises(ValueError, match="bad.json: not a valid tokenizer.json"):
    HFTokenizerVocabulary(str(tmp_path / "bad.json"))
  with pytest.raises(ValueError, match="unknown vocab kind"):
    make_vocab("wordpiece")
  with pytest.raises(ValueError, match="needs a path"):
    make_vocab("sentencepiece")


def test_named_eos_must_exist(tokenizer_json):
  with pytest.raises(ValueError, match="eos_token '<end>' is not in the vocabulary"):
    HFTokenizerVocabulary(tokenizer_json, eos_token="<end>")
