// The WPH model: which moments pywph's default model computes, in pywph's order.

#include "stats/detail/wph_plan.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace demix::detail {

const std::vector<std::string> kWphLabels{"j1", "t1", "p1", "j2", "t2", "p2", "n", "a", "pseudo"};
const std::vector<std::string> kWphClasses{"S11", "S00", "S01", "C01", "Cphase", "L"};

/// pywph's default model, in pywph's order (classes S11, S00, S01, C01, Cphase; real or complex).
std::vector<WphMoment> wph_default_moments(int J, int L, int dn, int A, bool cplx) {
  const int nt = (1 + cplx) * L, dl = L / 2;
  std::vector<WphMoment> m;
  // S11 and S00: lambda1 = lambda2, shifts over half of the alpha angles.
  for (int cls : {0, 1}) {
    const int p = cls == 0 ? 1 : 0;
    for (int j = 0; j < J; ++j) {
      for (int t = 0; t < nt; ++t)
        for (int n = 0; n <= dn; ++n)
          for (int a = 0; a < (n == 0 ? 1 : A); ++a) m.push_back({cls, j, t, p, j, t, p, n, a, 0});
      if (cls == 0 && cplx) // pseudo S11: Cov(x*psi_theta, conj(x*psi_{theta+pi}))
        for (int t = 0; t < L; ++t)
          for (int n = 0; n <= dn; ++n)
            for (int a = 0; a < (n == 0 ? 1 : 2 * A); ++a)
              m.push_back(
                  {0, j, t, 1, j, (t + L) % (2 * L), 1, n, n == 0 ? 0 : (a + A) % (2 * A), 1});
    }
  }
  for (int j = 0; j < J; ++j) // S01
    for (int t = 0; t < nt; ++t) m.push_back({2, j, t, 0, j, t, 1, 0, 0, 0});
  for (int j1 = 0; j1 < J; ++j1) // C01: j1 < j2, |t1 - t2| within pi/2 (and its pi-rotation)
    for (int j2 = j1 + 1; j2 < J; ++j2)
      for (int t1 = 0; t1 < nt; ++t1) {
        std::vector<int> t2s;
        for (int t2 = t1 - dl; t2 < t1 + dl; ++t2) t2s.push_back(t2);
        if (cplx)
          for (int t2 = t1 + L - dl; t2 < t1 + L + dl; ++t2) t2s.push_back(t2);
        for (int t2 : t2s) {
          if (t1 == t2) {
            for (int n = 0; n <= dn; ++n)
              for (int a = 0; a < (n == 0 ? 1 : 2 * A); ++a)
                m.push_back({3, j1, t1, 0, j2, t2, 1, n, a, 0});
          } else {
            m.push_back({3, j1, t1, 0, j2, ((t2 % nt) + nt) % nt, 1, 0, 0, 0});
          }
        }
      }
  for (int j1 = 0; j1 < J; ++j1) // Cphase: [x*psi_j1]^1 against [x*psi_j2]^(2^(j2-j1))
    for (int j2 = j1 + 1; j2 < J; ++j2)
      for (int t = 0; t < nt; ++t) {
        const int dn_eff = std::min(J - 1 - j2, dn);
        for (int n = 0; n <= dn_eff; ++n)
          for (int a = 0; a < (n == 0 ? 1 : 2 * A); ++a)
            m.push_back({4, j1, t, 1, j2, t, 1 << (j2 - j1), n, a, 0});
      }
  return m;
}

} // namespace demix::detail
