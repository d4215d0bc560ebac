// Pixel summaries against brute-force loops, and the NaN/Inf policies.

#include <demix/core/errors.hpp>
#include <demix/io/image.hpp>

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

TEST(Summarize, MatchesBruteForceOverFinitePixels) {
  at::Tensor x = at::randn({2, 17, 13}, at::kDouble) * 3 + 1;
  x[0][0][0] = std::numeric_limits<double>::quiet_NaN();
  x[1][5][7] = std::numeric_limits<double>::infinity();
  x[1][5][8] = -std::numeric_limits<double>::infinity();
  const demix::PixelSummary s = demix::summarize(x);
  double sum = 0, sum2 = 0, lo = INFINITY, hi = -INFINITY;
  int64_t n = 0;
  const double* p = x.data_ptr<double>();
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (!std::isfinite(p[i])) continue;
    sum += p[i], sum2 += p[i] * p[i], lo = std::min(lo, p[i]), hi = std::max(hi, p[i]), ++n;
  }
  const double mean = sum / n;
  EXPECT_EQ(s.count, x.numel());
  EXPECT_EQ(s.nan, 1);
  EXPECT_EQ(s.inf, 2);
  EXPECT_EQ(s.min, lo);
  EXPECT_EQ(s.max, hi);
  EXPECT_NEAR(s.mean, mean, 1e-12); // two summation orders of ~900 O(1) doubles
  EXPECT_NEAR(s.std, std::sqrt(sum2 / n - mean * mean), 1e-10);
}

TEST(NonFinitePolicy, RejectCountsZeroAndMeanReplace) {
  at::Tensor x = at::arange(8, at::kFloat).view({2, 2, 2}); // planes [0 1 2 3], [4 5 6 7]
  x[0][0][0] = NAN;
  x[1][1][1] = INFINITY;
  try {
    demix::apply_non_finite_policy(x, demix::NonFinitePolicy::Reject, "'map.fits'");
    FAIL() << "non-finite pixels accepted";
  } catch (const demix::ValueError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("'map.fits' has 2 non-finite pixel(s) (1 NaN, 1 Inf)"), std::string::npos)
        << msg;
  }
  const at::Tensor kept = demix::apply_non_finite_policy(x, demix::NonFinitePolicy::Keep, "x");
  EXPECT_TRUE(std::isnan(kept[0][0][0].item<float>()));
  const at::Tensor zero = demix::apply_non_finite_policy(x, demix::NonFinitePolicy::Zero, "x");
  EXPECT_EQ(zero[0][0][0].item<float>(), 0.0f);
  EXPECT_EQ(zero[1][1][1].item<float>(), 0.0f);
  const at::Tensor mean = demix::apply_non_finite_policy(x, demix::NonFinitePolicy::Mean, "x");
  EXPECT_FLOAT_EQ(mean[0][0][0].item<float>(), 2.0f); // (1 + 2 + 3) / 3
  EXPECT_FLOAT_EQ(mean[1][1][1].item<float>(), 5.0f); // (4 + 5 + 6) / 3
  EXPECT_EQ(mean[0][1][1].item<float>(), 3.0f);       // finite pixels untouched
  const at::Tensor clean = at::ones({3, 3});
  EXPECT_TRUE(
      demix::apply_non_finite_policy(clean, demix::NonFinitePolicy::Reject, "x").is_same(clean));
}
