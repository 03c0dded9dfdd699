"""HiGHS's MIP on the campaign `cargo bench --bench optimise` solves, for the speed and value
comparison in benches/README.md ("Campaign optimisation").

    CRV_OPTIMISE_DUMP=/tmp/opt cargo bench --bench optimise -- certified/100000
    pip install highspy numpy
    python3 benches/optimise_highs.py /tmp/opt 100000 [TIME_LIMIT_S]

Reads instance_N.csv (per customer, per offer: value, then one use per resource) and crv_N.json
(crv's objective, bound and time in the same run), solves the same MIP with HiGHS (binary
x_io, one offer per customer, the resource limits), and prints both and the ratios. With
TIME_LIMIT_S, HiGHS stops there and its best plan and bound so far are printed with its status
(a HiGHS stopped by the limit took longer than that; its plan is no better than its incumbent).
"""

import json
import sys
import time

import highspy
import numpy as np


def main(directory: str, customers: int, time_limit: float | None) -> None:
    answer = json.load(open(f"{directory}/crv_{customers}.json"))
    offers, resources = answer["offers"], answer["resources"]
    data = np.loadtxt(f"{directory}/instance_{customers}.csv", delimiter=",", dtype=np.float64)
    data = data.reshape(customers, offers, 1 + resources)
    n = customers * offers
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", 1e-9)
    if time_limit is not None:
        h.setOptionValue("time_limit", time_limit)
    inf = highspy.kHighsInf
    values = data[:, :, 0].reshape(n)
    lp = highspy.HighsLp()
    lp.num_col_ = n
    lp.col_cost_ = values
    lp.col_lower_ = np.zeros(n)
    lp.col_upper_ = np.ones(n)
    lp.sense_ = highspy.ObjSense.kMaximize
    rows_lower, rows_upper, starts, index, coeffs = [], [], [0], [], []
    for i in range(customers):  # one offer per customer
        index.extend(range(i * offers, (i + 1) * offers))
        coeffs.extend([1.0] * offers)
        starts.append(len(index))
        rows_lower.append(-inf)
        rows_upper.append(1.0)
    for k in range(resources):
        uses = data[:, :, 1 + k].reshape(n)
        nz = np.nonzero(uses)[0]
        index.extend(nz.tolist())
        coeffs.extend(uses[nz].tolist())
        starts.append(len(index))
        rows_lower.append(-inf)
        rows_upper.append(answer["limits"][k])
    lp.num_row_ = len(rows_upper)
    lp.row_lower_ = np.array(rows_lower)
    lp.row_upper_ = np.array(rows_upper)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_ = np.array(starts, dtype=np.int32)
    lp.a_matrix_.index_ = np.array(index, dtype=np.int32)
    lp.a_matrix_.value_ = np.array(coeffs)
    lp.a_matrix_.num_col_ = n
    lp.a_matrix_.num_row_ = lp.num_row_
    lp.integrality_ = [highspy.HighsVarType.kInteger] * n
    h.passModel(lp)
    started = time.perf_counter()
    h.run()
    seconds = time.perf_counter() - started
    info = h.getInfo()
    status = h.modelStatusToString(h.getModelStatus())
    print(
        f"customers {customers}: HiGHS objective {info.objective_function_value:.4f} "
        f"(bound {info.mip_dual_bound:.4f}, status {status}) in {seconds:.2f} s; crv objective "
        f"{answer['objective']:.4f} (bound {answer['upper_bound']:.4f}, gap {answer['gap']:.2e}) "
        f"in {answer['seconds']:.3f} s; crv {seconds / answer['seconds']:.1f}x faster, "
        f"value ratio crv/HiGHS {answer['objective'] / info.objective_function_value:.9f}"
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]) if len(sys.argv) > 3 else None)
