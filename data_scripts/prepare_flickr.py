"""Build the Flickr tag-prediction dataset of Frogner et al. (2015, Sec. 6.2) from the YFCC100M
metadata and image features that you supply, in the format of :mod:`wlearn.data.tag_format`.

The paper: "we select 1000 descriptive tags along with two random sets of 10,000 images each,
associated with these tags, for training and testing", ground metric from unit word2vec vectors,
image features from MatConvNet. Neither the images nor their features can be downloaded here,
so this script takes them as input:

- ``--metadata``: the YFCC100M metadata file (``yfcc100m_dataset``, optionally ``.bz2``), one
  photo or video per line, tab-separated. Two documented column layouts are recognised by
  their field count (Thomee et al., "YFCC100M: The New Data in Multimedia Research", CACM 59(2),
  2016, and the README distributed with the dataset on Yahoo Webscope):

  * 25 fields (the 2016 release on the multimedia-commons S3 bucket): 0 line number,
    1 photo/video identifier, 2 photo hash, 3 user NSID, 4 user nickname, 5 date taken,
    6 date uploaded, 7 capture device, 8 title, 9 description, **10 user tags**
    (comma-separated), 11 machine tags, 12 longitude, 13 latitude, 14 accuracy, 15 page URL,
    16 download URL, 17 license name, 18 license URL, 19 server id, 20 farm id, 21 secret,
    22 original secret, 23 original extension, **24 marker** (0 = photo, 1 = video);
  * 23 fields (the original 2014 Webscope files ``yfcc100m_dataset-0`` ... ``-9``): the same
    without line number and hash: 0 identifier, **8 user tags**, 9 machine tags, ...,
    **22 marker**.

  Text fields are URL-encoded (``+`` for a space, ``%xx`` escapes); tags are decoded with
  ``urllib.parse.unquote_plus`` and lower-cased.
- ``--features`` (N, F) ``.npy`` and ``--photo-ids``: a text file of the N photo identifiers,
  one a line, aligned with the feature rows (e.g. CNN activations you computed).

Descriptive tags: single alphabetic words (no machine tags ``ns:pred=value``, no years or
model numbers, which contain digits), not camera or app names (:data:`NOT_DESCRIPTIVE`), and
with a word vector (GloVe 6B 50-d by default, ``--word2vec`` for the paper's vectors). The
``--n-tags`` most frequent of them over the photos that have features are kept (ties by
name); photos with at least one kept tag are split at random (``--seed``) into two disjoint
sets of ``--n-train`` and ``--n-test``.

Usage::

    python data_scripts/prepare_flickr.py --metadata yfcc100m_dataset.bz2 \\
        --features vgg_fc7.npy --photo-ids vgg_fc7_ids.txt [--word2vec GoogleNews.bin]

Output (atomic writes): ``DATA_ROOT/flickr/`` (or ``--out``), read by ``wlearn.data.load_tags``.
Introduced in notebooks/06_tag_prediction.ipynb.
"""

from __future__ import annotations

import argparse
import bz2
import collections
import re
from pathlib import Path
from urllib.parse import unquote_plus

import numpy as np
import scipy.sparse as sp
from prepare_tag_vectors import glove_vectors, read_word2vec

from wlearn.data._common import DATA_ROOT
from wlearn.data.tag_format import read_lines, write_tag_dataset
from wlearn.data.tags import FLICKR_DIR

LAYOUTS = {25: dict(id=1, tags=10, marker=24), 23: dict(id=0, tags=8, marker=22)}
"""Field count -> 0-based columns of the identifier, the user tags and the photo/video marker."""

NOT_DESCRIPTIVE = frozenset(
    """
canon nikon sony olympus pentax fujifilm fuji panasonic lumix leica kodak samsung minolta
konica ricoh sigma tamron zeiss hasselblad polaroid lomo lomography holga iphone ipod ipad
android instagram instagramapp flickr flickrmobile uploaded upload geotagged geotag eos
powershot cybershot coolpix finepix dslr slr camera cameraphone lens photo photos photography
picture pictures pic pics image img jpg raw hdr square squareformat iphoneography
""".split()
)
"""Camera, lens, app and file words that users tag with but that describe no content."""

_WORD = re.compile(r"^[a-z]+$")


def decode_tags(field: str) -> list[str]:
    """The user-tag field (comma-separated, URL-encoded) -> decoded, lower-case, distinct tags."""
    out = []
    for raw in field.split(","):
        tag = unquote_plus(raw).strip().lower()
        if tag and tag not in out:
            out.append(tag)
    return out


def is_descriptive(tag: str) -> bool:
    """A single alphabetic word that is no camera/app/file word (before the word-vector test)."""
    return bool(_WORD.match(tag)) and tag not in NOT_DESCRIPTIVE and len(tag) > 1


def _open(path: Path):
    return (
        bz2.open(path, "rt", encoding="utf-8")
        if path.suffix == ".bz2"
        else open(path, encoding="utf-8")
    )


def read_photo_tags(metadata: str | Path, wanted_ids) -> dict[str, list[str]]:
    """Stream the metadata file; return ``{photo id: descriptive candidate tags}`` for the
    photos (marker 0) whose id is in ``wanted_ids``."""
    wanted = set(wanted_ids)
    out: dict[str, list[str]] = {}
    with _open(Path(metadata)) as f:
        for n, line in enumerate(f, 1):
            fields = line.rstrip("\n").split("\t")
            layout = LAYOUTS.get(len(fields))
            if layout is None:
                raise ValueError(
                    f"metadata: line {n} of {metadata} has {len(fields)} tab-separated fields, "
                    f"expected one of {sorted(LAYOUTS)} (the YFCC100M layouts)"
                )
            pid = fields[layout["id"]]
            if fields[layout["marker"]] != "0" or pid not in wanted:
                continue
            out[pid] = [t for t in decode_tags(fields[layout["tags"]]) if is_descriptive(t)]
    return out


def choose_vocabulary(
    photo_tags: dict[str, list[str]], n_tags: int, vectors_of
) -> tuple[list[str], np.ndarray]:
    """The ``n_tags`` most frequent candidate tags (ties by name) that have a word vector.

    ``vectors_of(words) -> {word: vector}`` looks vectors up, ``20 * n_tags`` candidates at a
    time (one pass over a word2vec file is usually enough).
    """
    counts = collections.Counter(t for tags in photo_tags.values() for t in tags)
    ranked = sorted(counts, key=lambda t: (-counts[t], t))
    words, vecs, start = [], [], 0
    while len(words) < n_tags and start < len(ranked):
        block = ranked[start : start + 20 * n_tags]
        found = vectors_of(block)
        for t in block:
            if t in found and len(words) < n_tags:
                words.append(t)
                vecs.append(found[t])
        start += len(block)
    if len(words) < n_tags:
        raise ValueError(
            f"n_tags: asked for {n_tags} descriptive tags with word vectors, found {len(words)}"
        )
    return words, np.stack(vecs).astype(np.float32)


def main(argv=None) -> Path:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--metadata", type=Path, required=True, help="yfcc100m_dataset[.bz2]")
    ap.add_argument("--features", type=Path, required=True, help="(N, F) .npy image features")
    ap.add_argument("--photo-ids", type=Path, required=True, help="N photo ids, one a line")
    ap.add_argument("--n-tags", type=int, default=1000)
    ap.add_argument("--n-train", type=int, default=10_000)
    ap.add_argument("--n-test", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--word2vec", type=Path, help="word2vec binary (default: GloVe 6B 50-d)")
    ap.add_argument("--glove-root", type=Path, help="GloVe npy + parquet directory")
    ap.add_argument("--out", type=Path, default=DATA_ROOT / FLICKR_DIR)
    args = ap.parse_args(argv)
    for name in ("n_tags", "n_train", "n_test"):
        if getattr(args, name) < 1:
            raise ValueError(
                f"--{name.replace('_', '-')}: expected >= 1, got {getattr(args, name)}"
            )

    features = np.load(args.features, mmap_mode="r")  # (N, F)
    ids = [s.strip() for s in read_lines(args.photo_ids)]
    if features.ndim != 2 or features.shape[0] != len(ids):
        raise ValueError(
            f"features: expected shape ({len(ids)}, F) to match {len(ids)} photo ids, "
            f"got {features.shape}"
        )
    row = {pid: i for i, pid in enumerate(ids)}
    photo_tags = read_photo_tags(args.metadata, row)
    if args.word2vec:

        def vectors_of(words):
            return read_word2vec(args.word2vec, words)
    else:

        def vectors_of(words):
            return glove_vectors(words, args.glove_root)

    words, vectors = choose_vocabulary(photo_tags, args.n_tags, vectors_of)
    col = {t: j for j, t in enumerate(words)}

    eligible = sorted(p for p, tags in photo_tags.items() if any(t in col for t in tags))
    need = args.n_train + args.n_test
    if len(eligible) < need:
        raise ValueError(
            f"--n-train/--n-test: need {need} photos with a kept tag, found {len(eligible)}"
        )
    pick = np.random.default_rng(args.seed).choice(len(eligible), size=need, replace=False)
    splits = {}
    for name, part in (("train", pick[: args.n_train]), ("test", pick[args.n_train :])):
        pids = [eligible[i] for i in part]
        X = np.stack([np.asarray(features[row[p]], dtype=np.float32) for p in pids])  # (n, F)
        r, c = zip(
            *[(i, col[t]) for i, p in enumerate(pids) for t in photo_tags[p] if t in col],
            strict=True,
        )
        Y = sp.csr_matrix((np.ones(len(r), np.float32), (r, c)), shape=(len(pids), len(words)))
        splits[name] = (X, Y, pids)
    write_tag_dataset(args.out, words, vectors, splits)
    print(
        f"wrote {len(words)} tags, {args.n_train} train and {args.n_test} test photos to {args.out}"
    )
    return args.out


if __name__ == "__main__":
    main()
