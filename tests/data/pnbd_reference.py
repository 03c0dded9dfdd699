#!/usr/bin/env python3
"""Reference values for src/btyd/special.rs and src/btyd/pnbd.rs, computed with mpmath at 50
significant digits, independently of the Rust code's methods:

- hyp2f1_reference.csv: the sign and ln |2F1(a, b; c; z)| by mpmath.hyp2f1.
- hyperu_reference.csv: W(s, z) = z^s U(s, s, z) by mpmath.hyperu (U: the confluent
  hypergeometric function of the second kind).
- pnbd_reference.csv: the Pareto/NBD log-likelihood of one history, its gradient with respect
  to the log-parameters, P(alive), expected purchases in the next t periods and DERT. The
  likelihood is Schmittlein, Morrison & Colombo's, written as the integral over the death time
      L = G(r+x) a^r b^s / G(r) * [ (a+T)^-(r+x) (b+T)^-s
                                    + s * Int_{t_x}^{T} (a+u)^-(r+x) (b+u)^-(s+1) du ]
  and integrated by mpmath.quad (tanh-sinh), not by 2F1 as the Rust code does; the gradient
  differentiates under the integral sign (each derivative its own quad). Expected purchases
  and DERT use their closed forms (DERT with mpmath.hyperu).

Run from the repository root: python3 tests/data/pnbd_reference.py (mpmath 1.3).
"""
import csv
import mpmath as mp

mp.mp.dps = 50
OUT = "tests/data/"


def g17(v):
    return mp.nstr(v, 17, min_fixed=-4, max_fixed=6) if mp.isfinite(v) else str(v)


def hyp2f1_rows():
    cases = [
        (1, 1, 2, 0.5), (2.5, 3, 3, 0.3), (0.5, 0.7, 1.3, 0.1), (0.5, 0.7, 1.3, 0.9),
        (0.5, 0.7, 1.3, 0.999), (3.2, 1.5, 4.1, 0.95), (1.2, 2.3, 0.4, 0.6),
        # BG/NBD's conditional expectation: 2F1(r+x, b+x; a+b+x-1; t/(alpha+T+t)) at
        # CDNOW's estimates (r 0.243, alpha 4.414, a 0.793, b 2.426), T 38.86.
        (0.243, 2.426, 2.219, 52 / (4.414 + 38.86 + 52)),
        (0.243, 2.426, 2.219, 520 / (4.414 + 38.86 + 520)),
        (2.243, 4.426, 4.219, 52 / (4.414 + 38.86 + 52)),
        (29.243, 31.426, 31.219, 10 / (4.414 + 38.86 + 10)),
        (5000.243, 5002.426, 5002.219, 52 / (4.414 + 38.86 + 52)),
        (5000.243, 5002.426, 5002.219, 0.99),
        # a + b - 1 < 0 at x = 0: c negative, not an integer.
        (0.3, 0.5, -0.2, 0.4), (0.3, 0.5, -0.2, 0.95),
        # c - a - b an integer (the 1 - z transformation's degenerate case).
        (1.5, 2.5, 4.0, 0.97), (1.5, 2.5, 5.0, 0.995),
        (200.5, 300.25, 150.75, 0.7),
    ]
    rows = []
    for a, b, c, z in cases:
        v = mp.hyp2f1(a, b, c, z)
        rows.append([repr(float(a)), repr(float(b)), repr(float(c)), repr(float(z)),
                     "-1" if v < 0 else "1", g17(mp.log(abs(v)))])
    return rows


def hyperu_rows():
    rows = []
    for s in [0.05, 0.6061, 1.0, 1.5, 2.0, 7.3, 40.0]:
        for z in [1e-8, 0.003, 0.15, 1.0, 7.5, 300.0]:
            s_, z_ = mp.mpf(s), mp.mpf(z)
            w = z_ ** s_ * mp.hyperu(s_, s_, z_)
            rows.append([repr(s), repr(z), g17(w)])
    return rows


def pnbd(params, x, tx, T, ts, deltas):
    r, al, s, be = [mp.mpf(p) for p in params]
    x, tx, T = mp.mpf(x), mp.mpf(tx), mp.mpf(T)
    p = r + x

    def f(u):
        return (al + u) ** (-p) * (be + u) ** (-(s + 1))

    # Breakpoints at multiples of the integrand's decay scale, so quad sees its peak.
    scale = 1 / (p / (al + tx) + (s + 1) / (be + tx))
    steps = (0.1, 0.3, 1, 3, 10, 30, 100, 300, 1000)
    pts = [tx] + [tx + k * scale for k in steps if tx + k * scale < T] + [T]

    def quad(g):
        # quad's tolerance is absolute: integrate f / f(t_x), which is 1 at t_x.
        if T <= tx:
            return mp.mpf(0)
        f0 = f(tx)
        return f0 * mp.quad(lambda u: g(u) * f(u) / f0, pts, maxdegree=10)

    D = quad(lambda u: 1)
    # Cross-check the quadrature against the 2F1 closed form (mpmath's hyp2f1) of
    # src/btyd/pnbd.rs's module doc.
    if T > tx:
        big, small, pb, qs = (al, be, p, s + 1) if al >= be else (be, al, s + 1, p)

        def tail(t0):
            z = (big - small) / (big + t0)
            return ((big + t0) ** (-pb) * (small + t0) ** (1 - qs)
                    * mp.hyp2f1(1, pb, pb + qs, z) / (pb + qs - 1))

        closed = tail(tx) - tail(T)
        assert abs(D - closed) <= mp.mpf(10) ** -30 * abs(closed), (params, x, tx, T, D, closed)
    E = (al + T) ** (-p) * (be + T) ** (-s)
    S = E + s * D
    lead = mp.loggamma(p) - mp.loggamma(r) + r * mp.log(al) + s * mp.log(be)
    ll = lead + mp.log(S)
    dD_dr = -quad(lambda u: mp.log(al + u))
    dD_da = -p * quad(lambda u: 1 / (al + u))
    dD_ds = -quad(lambda u: mp.log(be + u))
    dD_db = -(s + 1) * quad(lambda u: 1 / (be + u))
    g_r = mp.digamma(p) - mp.digamma(r) + mp.log(al) + (-mp.log(al + T) * E + s * dD_dr) / S
    g_a = r / al + (-p / (al + T) * E + s * dD_da) / S
    g_s = mp.log(be) + (-mp.log(be + T) * E + D + s * dD_ds) / S
    g_b = s / be + (-s / (be + T) * E + s * dD_db) / S
    grad = [r * g_r, al * g_a, s * g_s, be * g_b]
    p_alive = E / S
    out = [ll] + grad + [p_alive]
    for t in ts:
        if s == 1:
            part = mp.log((be + T + t) / (be + T))
        else:
            part = (1 - ((be + T) / (be + T + t)) ** (s - 1)) / (s - 1)
        out.append(p * (be + T) / (al + T) * part * p_alive)
    for d in deltas:
        d = mp.mpf(d)
        z = d * (be + T)
        out.append(p_alive * p / (al + T) * (be + T) ** s * d ** (s - 1) * mp.hyperu(s, s, z))
    return out


PARAMS = [
    ("cdnow", (0.5534, 10.5802, 0.6061, 11.6562)),
    ("alpha_gg_beta", (0.5, 100.0, 0.8, 0.5)),
    ("alpha_ll_beta", (2.0, 0.3, 1.5, 50.0)),
    ("alpha_eq_beta_s_1", (1.0, 5.0, 1.0, 5.0)),
    ("large_s", (3.0, 2.0, 12.0, 4.0)),
    # max/min(alpha, beta) = 1e6 either way: 2F1's z within 1e-6 of 1 at t_x = 0.
    ("alpha_1e6_beta", (0.55, 1e7, 0.6, 10.0)),
    ("beta_1e6_alpha", (0.55, 10.0, 0.6, 1e7)),
]
HISTORIES = [
    (0, 0, 38.86), (2, 30.43, 38.86), (5, 38.86, 38.86), (0, 0, 0), (5000, 30, 39),
    (5000, 39, 39), (1, 0.5, 60), (29, 38, 39), (50, 1, 100), (0, 0, 1e-3),
]
TS = [10.0, 52.0]
DELTAS = [0.15 / 52, 0.01]


def pnbd_rows():
    rows = []
    for name, params in PARAMS:
        for x, tx, T in HISTORIES:
            vals = pnbd(params, x, tx, T, TS, DELTAS)
            rows.append([name] + [repr(float(p)) for p in params]
                        + [repr(float(x)), repr(float(tx)), repr(float(T))] + [g17(v) for v in vals])
    return rows


def write(name, header, rows):
    with open(OUT + name, "w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


if __name__ == "__main__":
    write("hyp2f1_reference.csv", ["a", "b", "c", "z", "sign", "ln_abs_value"], hyp2f1_rows())
    write("hyperu_reference.csv", ["s", "z", "w"], hyperu_rows())
    write("pnbd_reference.csv",
          ["case", "r", "alpha", "s", "beta", "frequency", "recency", "age", "log_likelihood",
           "d_ln_r", "d_ln_alpha", "d_ln_s", "d_ln_beta", "p_alive", "expected_10",
           "expected_52", "dert_0.00288", "dert_0.01"], pnbd_rows())
