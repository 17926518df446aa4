"""Merkle tree hashing, inclusion and consistency proofs as RFC 6962 (Certificate Transparency) defines them.

Leaves are hashed as SHA-256(0x00 || leaf) and interior nodes as SHA-256(0x01 || left || right), so a
leaf can never be passed off as an interior node. The tree over n leaves splits at the largest power
of two smaller than n. Proofs are lists of 32-byte hashes; the verifiers below follow the algorithms of
RFC 9162 section 2.1.3.2 and 2.1.4.2, which check the proofs RFC 6962 produces.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two smaller than n (n >= 2)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root_from_hashes(hashes: Sequence[bytes]) -> bytes:
    """Merkle tree hash of leaves already passed through ``leaf_hash``; iterative, so any size works."""
    if not hashes:
        return EMPTY_ROOT
    # Reduce level by level: pairing left to right and carrying an odd last node up gives the same tree as
    # RFC 6962's recursive split at the largest power of two.
    level = list(hashes)
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def _subtree_root(hashes: Sequence[bytes], start: int, end: int) -> bytes:
    return root_from_hashes(hashes[start:end])


def inclusion_proof(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Audit path for leaf ``index`` in the tree over ``hashes`` (leaf hashes)."""
    if not 0 <= index < len(hashes):
        raise IndexError(f"leaf {index} is outside a tree of {len(hashes)} leaves")
    proof: list[bytes] = []
    start, end = 0, len(hashes)
    path = []
    while end - start > 1:
        k = _split(end - start)
        if index - start < k:
            path.append(_subtree_root(hashes, start + k, end))
            end = start + k
        else:
            path.append(_subtree_root(hashes, start, start + k))
            start = start + k
    proof.extend(reversed(path))
    return proof


def verify_inclusion(leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Check that ``leaf_hash`` ``leaf`` sits at ``index`` of the tree of ``size`` leaves with ``root``."""
    if not 0 <= index < size:
        return False
    fn, sn = index, size - 1
    current = leaf
    for sibling in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            current = node_hash(sibling, current)
            if not fn & 1:
                while fn & 1 == 0 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            current = node_hash(current, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and current == root


def consistency_proof(hashes: Sequence[bytes], old_size: int) -> list[bytes]:
    """Proof that the first ``old_size`` leaves of ``hashes`` form a prefix of the whole tree."""
    new_size = len(hashes)
    if not 0 < old_size <= new_size:
        raise ValueError(f"old size {old_size} must be between 1 and {new_size}")
    return _consistency(hashes, old_size, 0, new_size, True)


def _consistency(hashes: Sequence[bytes], m: int, start: int, end: int, complete: bool) -> list[bytes]:
    n = end - start
    if m == n:
        return [] if complete else [_subtree_root(hashes, start, end)]
    k = _split(n)
    if m <= k:
        return _consistency(hashes, m, start, start + k, complete) + [_subtree_root(hashes, start + k, end)]
    return _consistency(hashes, m - k, start + k, end, False) + [_subtree_root(hashes, start, start + k)]


def verify_consistency(old_size: int, new_size: int, old_root: bytes, new_root: bytes,
                       proof: Sequence[bytes]) -> bool:
    """Check that the tree of ``new_size`` leaves with ``new_root`` extends the one with ``old_root``."""
    if old_size == new_size:
        return old_root == new_root and not proof
    if not 0 < old_size < new_size or not proof:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    first = path[0]
    fr = sr = first
    for sibling in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(sibling, fr)
            sr = node_hash(sibling, sr)
            while fn & 1 == 0 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, sibling)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == old_root and sr == new_root
