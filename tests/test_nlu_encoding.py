"""BIO tagging round trip with the real MiniLM tokenizer: spans -> tags -> spans."""

from transformers import AutoTokenizer

from smartmkt.nlu.data import parse_annotated
from smartmkt.nlu.encoding import decode_tags, encode_texts, tag_targets
from smartmkt.nlu.model import tag_families
from smartmkt.recommend.text_encoder import minilm_path


def test_tags_decode_back_to_the_annotated_spans() -> None:
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    ex = parse_annotated(
        "any [sci-fi](category) from the [90s](year) for [my dad](recipient), "
        'nothing [Horror]{"entity": "category", "role": "exclude"}',
        "ask_recommendation",
    )
    tags = tag_families({s.label for s in ex.entities})
    index = {t: i for i, t in enumerate(tags)}
    enc = encode_texts(tokenizer, [ex.text], 64)
    targets = tag_targets(enc["offset_mapping"][0], enc["attention_mask"][0], ex, index)
    offsets = [tuple(o) for o in enc["offset_mapping"][0].tolist()]
    ids = [0 if t == -100 else t for t in targets]
    decoded = decode_tags(ex.text, offsets, ids, [1.0] * len(ids), tags)
    got = [(ex.text[d.start : d.end], d.family) for d in decoded]
    assert got == [
        ("sci-fi", "category"),
        ("90s", "year"),
        ("my dad", "recipient"),
        ("Horror", "category#exclude"),
    ]


def test_word_pieces_are_widened_to_whole_words() -> None:
    text = "a comdy please"
    # Tag only the first word piece of "comdy": the entity must still be the whole word.
    offsets = [(0, 0), (0, 1), (2, 5), (5, 7), (8, 14), (0, 0)]
    tags = ["O", "B-category", "I-category"]
    decoded = decode_tags(text, offsets, [0, 0, 1, 0, 0, 0], [1.0] * 6, tags)
    assert [(text[d.start : d.end], d.family) for d in decoded] == [("comdy", "category")]
