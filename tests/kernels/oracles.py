"""Independent exact oracles for tests (never the code under test)."""
from fractions import Fraction


def rational_rank(rows) -> int:
    """Rank by Gauss-Jordan over Fractions."""
    M = [[Fraction(int(v)) for v in row] for row in rows]
    rank, cols = 0, len(M[0]) if M else 0
    for c in range(cols):
        piv = next((i for i in range(rank, len(M)) if M[i][c] != 0), None)
        if piv is None:
            continue
        M[rank], M[piv] = M[piv], M[rank]
        for i in range(len(M)):
            if i != rank and M[i][c] != 0:
                f = M[i][c] / M[rank][c]
                M[i] = [a - f * b for a, b in zip(M[i], M[rank])]
        rank += 1
    return rank
