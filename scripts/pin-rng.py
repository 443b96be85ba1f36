#!/usr/bin/env python3
"""Recomputes the values engine/tests/sampling.rs pins for llm_engine::Rng, from the
published algorithms, without the engine: splitmix64 (one step) seeds xorshift64*.

    python3 scripts/pin-rng.py
"""
M = (1 << 64) - 1


def seed_state(seed):
    # splitmix64 (Steele, Lea, Flood 2014; Vigna's splitmix64.c), one output.
    z = (seed + 0x9E3779B97F4A7C15) & M
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M
    z ^= z >> 31
    # xorshift64* must not start at 0; the engine substitutes its multiplier.
    return z if z else 0x2545F4914F6CDD1D


def xorshift64star(state):
    # Vigna, "An experimental exploration of Marsaglia's xorshift generators", 12/25/27.
    state ^= state >> 12
    state ^= (state << 25) & M
    state ^= state >> 27
    return state, (state * 0x2545F4914F6CDD1D) & M


def first_u64(seed, n=5):
    s, out = seed_state(seed), []
    for _ in range(n):
        s, x = xorshift64star(s)
        out.append(x)
    return out


def first_f32(seed, n=5):
    # next_f32: the top 24 bits of the next u64, divided by 2^24 (exact in f32).
    s, out = seed_state(seed), []
    for _ in range(n):
        s, x = xorshift64star(s)
        out.append((x >> 40) / 16777216.0)
    return out


for seed in (0, 1, 42):
    print(f"seed {seed}: state {seed_state(seed):#018x}")
    print("  u64:", ", ".join(f"0x{x:016x}" for x in first_u64(seed)))
    print("  f32:", ", ".join(repr(x) for x in first_f32(seed)))
    print("  f32 numerators (x 2^-24):", ", ".join(str(int(x * 16777216)) for x in first_f32(seed)))

# The one seed whose splitmix64 output is 0 (the finaliser is a bijection fixing 0, so it is
# the seed that makes seed + golden ratio wrap to 0): the engine substitutes the state.
zero_seed = (-0x9E3779B97F4A7C15) & M
print(f"seed {zero_seed:#018x}: state {seed_state(zero_seed):#018x}")
print("  u64:", ", ".join(f"0x{x:016x}" for x in first_u64(zero_seed, 2)))
