"""RFC 6962 Merkle trees: known values worked out by hand, and proofs checked for every small tree."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine import merkle


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def reference_root(leaves: list[bytes]) -> bytes:
    """MTH as RFC 6962 section 2.1 defines it, recursively over the raw leaves."""
    if not leaves:
        return sha256(b"")
    if len(leaves) == 1:
        return sha256(b"\x00" + leaves[0])
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return sha256(b"\x01" + reference_root(leaves[:k]) + reference_root(leaves[k:]))


def leaves_of(count: int) -> list[bytes]:
    return [bytes([index % 256]) * (index % 3) + index.to_bytes(2, "big") for index in range(count)]


def hashes_of(count: int) -> list[bytes]:
    return [merkle.leaf_hash(leaf) for leaf in leaves_of(count)]


# known answers


def test_empty_tree_root_is_hash_of_nothing() -> None:
    assert merkle.root_from_hashes([]) == sha256(b"")
    assert merkle.EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_leaf_and_node_prefixes() -> None:
    assert merkle.leaf_hash(b"") == sha256(b"\x00")
    assert merkle.leaf_hash(b"").hex() == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    assert merkle.leaf_hash(b"\x00") == sha256(b"\x00\x00")
    left, right = sha256(b"left"), sha256(b"right")
    assert merkle.node_hash(left, right) == sha256(b"\x01" + left + right)
    assert merkle.node_hash(left, right) != merkle.node_hash(right, left)


def test_single_leaf_root_is_its_leaf_hash() -> None:
    assert merkle.root_from_hashes([merkle.leaf_hash(b"")]) == sha256(b"\x00")


def test_two_leaves_by_hand() -> None:
    a, b = sha256(b"\x00"), sha256(b"\x00\x00")
    expected = sha256(b"\x01" + a + b)
    assert merkle.root_from_hashes([merkle.leaf_hash(b""), merkle.leaf_hash(b"\x00")]) == expected


def test_three_leaves_split_after_two() -> None:
    a, b, c = sha256(b"\x00"), sha256(b"\x00\x00"), sha256(b"\x00\x10")
    expected = sha256(b"\x01" + sha256(b"\x01" + a + b) + c)
    leaves = [merkle.leaf_hash(leaf) for leaf in (b"", b"\x00", b"\x10")]
    assert merkle.root_from_hashes(leaves) == expected


def test_five_leaves_split_after_four() -> None:
    raw = [b"", b"\x00", b"\x10", b"\x20\x21", b"\x30\x31"]
    a, b, c, d, e = (sha256(b"\x00" + leaf) for leaf in raw)
    left = sha256(b"\x01" + sha256(b"\x01" + a + b) + sha256(b"\x01" + c + d))
    expected = sha256(b"\x01" + left + e)
    assert merkle.root_from_hashes([merkle.leaf_hash(leaf) for leaf in raw]) == expected


@pytest.mark.parametrize("count", range(0, 70))
def test_root_matches_recursive_definition(count: int) -> None:
    assert merkle.root_from_hashes(hashes_of(count)) == reference_root(leaves_of(count))


# The seven-leaf tree of RFC 6962 section 2.1.3, with its node names:
#
#             root
#            /    \
#           k      l
#          / \    / \
#         g   h  i   j
#        / \ / \ / \  |
#        a b c d e f  d6
class SevenLeaves:
    def __init__(self) -> None:
        self.hashes = hashes_of(7)
        self.a, self.b, self.c, self.d, self.e, self.f, self.j = self.hashes
        node = merkle.node_hash
        self.g, self.h, self.i = node(self.a, self.b), node(self.c, self.d), node(self.e, self.f)
        self.k, self.l = node(self.g, self.h), node(self.i, self.j)
        self.root = node(self.k, self.l)


@pytest.fixture
def seven() -> SevenLeaves:
    return SevenLeaves()


def test_seven_leaf_root(seven) -> None:
    assert merkle.root_from_hashes(seven.hashes) == seven.root


@pytest.mark.parametrize(("index", "names"), [(0, "bhl"), (3, "cgl"), (4, "fjk"), (6, "ik")])
def test_seven_leaf_audit_paths(seven, index, names) -> None:
    expected = [getattr(seven, name) for name in names]
    assert merkle.inclusion_proof(seven.hashes, index) == expected
    assert merkle.verify_inclusion(seven.hashes[index], index, 7, expected, seven.root)


@pytest.mark.parametrize(("old_size", "names"), [(3, "cdgl"), (4, "l"), (6, "ijk")])
def test_seven_leaf_consistency_proofs(seven, old_size, names) -> None:
    expected = [getattr(seven, name) for name in names]
    old_root = merkle.root_from_hashes(seven.hashes[:old_size])
    assert merkle.consistency_proof(seven.hashes, old_size) == expected
    assert merkle.verify_consistency(old_size, 7, old_root, seven.root, expected)


# inclusion proofs


@pytest.mark.parametrize("size", range(1, 34))
def test_every_inclusion_proof_verifies(size: int) -> None:
    hashes = hashes_of(size)
    root = merkle.root_from_hashes(hashes)
    for index in range(size):
        proof = merkle.inclusion_proof(hashes, index)
        assert merkle.verify_inclusion(hashes[index], index, size, proof, root)
        assert len(proof) <= max(size - 1, 0).bit_length()


@pytest.mark.parametrize("size", [2, 3, 7, 8, 13])
def test_inclusion_fails_for_wrong_inputs(size: int) -> None:
    hashes = hashes_of(size)
    root = merkle.root_from_hashes(hashes)
    for index in range(size):
        proof = merkle.inclusion_proof(hashes, index)
        other = (index + 1) % size
        assert not merkle.verify_inclusion(hashes[other], index, size, proof, root)
        assert not merkle.verify_inclusion(hashes[index], other, size, proof, root)
        assert not merkle.verify_inclusion(hashes[index], index, size, proof[:-1], root)
        assert not merkle.verify_inclusion(hashes[index], index, size, proof + [root], root)
        assert not merkle.verify_inclusion(hashes[index], index, size, proof, sha256(root))
        damaged = [sha256(proof[0])] + proof[1:]
        assert not merkle.verify_inclusion(hashes[index], index, size, damaged, root)


def test_inclusion_index_outside_tree() -> None:
    hashes = hashes_of(4)
    root = merkle.root_from_hashes(hashes)
    with pytest.raises(IndexError):
        merkle.inclusion_proof(hashes, 4)
    assert not merkle.verify_inclusion(hashes[0], 4, 4, merkle.inclusion_proof(hashes, 0), root)
    assert not merkle.verify_inclusion(hashes[0], -1, 4, merkle.inclusion_proof(hashes, 0), root)


def test_single_leaf_needs_empty_path() -> None:
    hashes = hashes_of(1)
    assert merkle.inclusion_proof(hashes, 0) == []
    assert merkle.verify_inclusion(hashes[0], 0, 1, [], hashes[0])


# consistency proofs


@pytest.mark.parametrize("new_size", range(1, 34))
def test_every_consistency_proof_verifies(new_size: int) -> None:
    hashes = hashes_of(new_size)
    new_root = merkle.root_from_hashes(hashes)
    for old_size in range(1, new_size + 1):
        old_root = merkle.root_from_hashes(hashes[:old_size])
        proof = merkle.consistency_proof(hashes, old_size)
        assert merkle.verify_consistency(old_size, new_size, old_root, new_root, proof)
        if old_size == new_size:
            assert proof == []


@pytest.mark.parametrize("new_size", [3, 5, 8, 12])
def test_consistency_fails_for_wrong_inputs(new_size: int) -> None:
    hashes = hashes_of(new_size)
    new_root = merkle.root_from_hashes(hashes)
    for old_size in range(1, new_size):
        old_root = merkle.root_from_hashes(hashes[:old_size])
        proof = merkle.consistency_proof(hashes, old_size)
        assert not merkle.verify_consistency(old_size, new_size, sha256(old_root), new_root, proof)
        assert not merkle.verify_consistency(old_size, new_size, old_root, sha256(new_root), proof)
        assert not merkle.verify_consistency(old_size, new_size, old_root, new_root, proof[:-1])
        assert not merkle.verify_consistency(old_size, new_size, old_root, new_root, [])
        damaged = proof[:-1] + [sha256(proof[-1])]
        assert not merkle.verify_consistency(old_size, new_size, old_root, new_root, damaged)
        assert not merkle.verify_consistency(new_size, old_size, new_root, old_root, proof)


def test_changed_old_leaf_breaks_consistency() -> None:
    hashes = hashes_of(10)
    old_root = merkle.root_from_hashes(hashes[:6])
    rewritten = list(hashes)
    rewritten[2] = merkle.leaf_hash(b"rewritten")
    proof = merkle.consistency_proof(rewritten, 6)
    assert not merkle.verify_consistency(6, 10, old_root, merkle.root_from_hashes(rewritten), proof)


def test_consistency_proof_rejects_sizes_outside_tree() -> None:
    hashes = hashes_of(5)
    with pytest.raises(ValueError):
        merkle.consistency_proof(hashes, 0)
    with pytest.raises(ValueError):
        merkle.consistency_proof(hashes, 6)


def test_equal_sizes_need_equal_roots() -> None:
    root = merkle.root_from_hashes(hashes_of(4))
    assert merkle.verify_consistency(4, 4, root, root, [])
    assert not merkle.verify_consistency(4, 4, root, sha256(root), [])
    assert not merkle.verify_consistency(4, 4, root, root, [root])


# larger trees


@given(st.integers(min_value=1, max_value=300), st.data())
def test_proofs_in_larger_trees(size: int, data: st.DataObject) -> None:
    hashes = hashes_of(size)
    root = merkle.root_from_hashes(hashes)
    index = data.draw(st.integers(min_value=0, max_value=size - 1))
    old_size = data.draw(st.integers(min_value=1, max_value=size))
    assert merkle.verify_inclusion(hashes[index], index, size, merkle.inclusion_proof(hashes, index), root)
    old_root = merkle.root_from_hashes(hashes[:old_size])
    proof = merkle.consistency_proof(hashes, old_size)
    assert merkle.verify_consistency(old_size, size, old_root, root, proof)
