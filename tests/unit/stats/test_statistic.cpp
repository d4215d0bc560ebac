// The Statistic interface, the registry, references as values, losses over coefficient chunks and
// Coefficients::concat, for every statistic of the registry.

#include <demix/core/context.hpp>
#include <demix/core/errors.hpp>
#include <demix/stats/registry.hpp>

#include "support/statistics.hpp"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>
#include <thread>
#include <vector>

namespace {

using demix::test::cpu64;
using demix::test::rel_diff;
const auto maps = demix::test::positive_maps;

/// One spec of each statistic, small enough for 32 x 32 maps.
std::vector<demix::StatisticSpec> specs() {
  return {demix::WphOptions{.J = 3, .L = 4, .dn = 1, .norm = demix::WphNorm::Auto},
          demix::WstOptions{.J = 3, .L = 4}, demix::ScatteringCovOptions{.J = 3, .L = 4},
          demix::PowerSpectrumOptions{}};
}

TEST(Registry, OneRowPerKindInOrderAndByName) {
  const auto& table = demix::statistic_registry();
  ASSERT_EQ(table.size(), 4u);
  for (std::size_t i = 0; i < table.size(); ++i) {
    EXPECT_EQ(static_cast<std::size_t>(table[i].kind), i);
    EXPECT_EQ(demix::statistic_info(table[i].name).kind, table[i].kind);
  }
  try {
    demix::statistic_info("wph2");
    FAIL() << "no error";
  } catch (const demix::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("wph2"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("scov"), std::string::npos); // lists the names
  }
}

TEST(Registry, MakesEachStatisticWithItsName) {
  for (const auto& spec : specs()) {
    const auto stat = demix::make_statistic(spec, demix::Grid2d{32, 32}, cpu64());
    const demix::StatisticInfo& info = demix::statistic_info(demix::kind_of(spec));
    EXPECT_EQ(std::string(stat->name()), info.name);
    EXPECT_EQ(stat->supports_cross(), info.supports_cross) << info.name;
    EXPECT_TRUE(std::get<demix::Grid2d>(stat->grid()) == (demix::Grid2d{32, 32}));
    EXPECT_FALSE(stat->keywords().empty());
  }
}

TEST(Registry, ResolvesTheCommonOptionsWithEachStatisticsDefaults) {
  const demix::Grid2d grid{512, 512};
  const auto wph = std::get<demix::WphOptions>(demix::resolve({}, grid));
  EXPECT_EQ(wph.J, 7);
  EXPECT_EQ(wph.L, 4);
  EXPECT_EQ(wph.dn, 2);
  EXPECT_EQ(wph.norm, demix::WphNorm::None);
  const auto wst =
      std::get<demix::WstOptions>(demix::resolve({.kind = demix::StatisticKind::Wst}, grid));
  EXPECT_EQ(wst.J, 5);
  EXPECT_EQ(wst.L, 8);
  const auto scov = std::get<demix::ScatteringCovOptions>(
      demix::resolve({.kind = demix::StatisticKind::ScatteringCov}, grid));
  EXPECT_EQ(scov.normalization, demix::ScovNormalization::P00); // scov's own default: auto
  // Small maps: J = log2(min(H, W)) - 2; the largest J follows each statistic's rule.
  EXPECT_EQ(demix::default_J(demix::StatisticKind::Wph, {64, 48}), 3);
  EXPECT_EQ(demix::largest_J(demix::StatisticKind::Wph, {64, 64}), 5);   // 2^J < 64
  EXPECT_EQ(demix::largest_J(demix::StatisticKind::Wst, {64, 64}), 6);   // 2^J <= 64
  EXPECT_EQ(demix::largest_J(demix::StatisticKind::Wph, {100, 100}), 6); // 64 < 100
  // What does not apply, or is out of range, is refused with the value.
  using demix::ValueError;
  EXPECT_THROW(demix::resolve({.kind = demix::StatisticKind::PowerSpectrum, .J = 3}, grid),
               ValueError);
  EXPECT_THROW(demix::resolve({.kind = demix::StatisticKind::Wst, .dn = 1}, grid), ValueError);
  EXPECT_THROW(
      demix::resolve({.kind = demix::StatisticKind::Wst, .norm = demix::CommonNorm::Auto}, grid),
      ValueError);
  EXPECT_THROW(demix::resolve({.kind = demix::StatisticKind::ScatteringCov},
                              {64, 64, demix::Boundary::NonPeriodic}),
               ValueError);
  try {
    demix::resolve({.J = 9}, grid);
    FAIL() << "no error";
  } catch (const ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("J <= 8"), std::string::npos) << e.what();
  }
}

TEST(Statistic, LabelsWithoutComputingAreForwardsLabels) {
  for (const auto& spec : specs()) {
    const auto stat = demix::make_statistic(spec, demix::Grid2d{32, 32}, cpu64());
    const demix::Coefficients& l = stat->labels();
    EXPECT_FALSE(l.values.defined()) << stat->name();
    const demix::Coefficients c = stat->forward(maps(2, 32, 1));
    EXPECT_EQ(c.values.sizes(), (std::vector<int64_t>{2, l.size()})) << stat->name();
    EXPECT_EQ(c.classes, l.classes) << stat->name();
    EXPECT_EQ(c.label_names, l.label_names) << stat->name();
    EXPECT_TRUE(at::equal(c.class_id, l.class_id)) << stat->name();
    EXPECT_TRUE(at::equal(c.labels, l.labels)) << stat->name();
  }
}

TEST(Statistic, DefaultLossAndGradIsAutogradOverForward) {
  for (const auto& spec : specs()) {
    const auto stat = demix::make_statistic(spec, demix::Grid2d{32, 32}, cpu64());
    const demix::Reference ref = stat->reference(maps(1, 32, 2));
    const at::Tensor x = maps(3, 32, 3);
    const at::Tensor target = stat->forward(maps(1, 32, 4), ref).values[0];
    const at::Tensor w = at::rand({stat->size()}, at::kDouble);
    const demix::LossResult r = stat->loss_and_grad(x, demix::SquaredDistance(target, w), ref);
    const at::Tensor xg = x.clone().requires_grad_(true);
    const at::Tensor per_map = ((stat->forward(xg, ref).values - target).abs().square() * w).sum(1);
    per_map.sum().backward();
    // The same arithmetic (WPH: chunked, other order): float64 rounding only.
    EXPECT_LT(rel_diff(r.loss, per_map.detach()), 1e-12) << stat->name();
    EXPECT_LT(rel_diff(r.grad, xg.grad()), 1e-10) << stat->name();
    EXPECT_EQ(r.loss.sizes(), (std::vector<int64_t>{3})) << stat->name();
    const demix::LossResult no_grad =
        stat->loss_and_grad(x, demix::SquaredDistance(target, w), ref, false);
    EXPECT_FALSE(no_grad.grad.defined());
    EXPECT_LT(rel_diff(no_grad.loss, r.loss), 1e-14) << stat->name();
  }
}

TEST(Statistic, CrossIsAnExplicitErrorWhereUnsupported) {
  for (const auto& spec : specs()) {
    const auto stat = demix::make_statistic(spec, demix::Grid2d{32, 32}, cpu64());
    const at::Tensor x = maps(1, 32, 5);
    if (stat->supports_cross())
      EXPECT_LT(rel_diff(stat->forward_cross(x, x).values, stat->forward(x).values), 1e-12);
    else
      EXPECT_THROW(stat->forward_cross(x, x), demix::ValueError) << stat->name();
  }
}

TEST(Reference, IsAValueOneOperatorServesMany) {
  const auto stat = demix::make_statistic(specs()[0], demix::Grid2d{32, 32}, cpu64());
  const demix::Reference a = stat->reference(maps(1, 32, 6)), b = stat->reference(maps(1, 32, 7));
  const at::Tensor x = maps(2, 32, 8);
  const at::Tensor with_a = stat->forward(x, a).values, with_b = stat->forward(x, b).values;
  EXPECT_GT(rel_diff(with_a, with_b), 1e-3);                  // they differ...
  EXPECT_TRUE(at::equal(stat->forward(x, a).values, with_a)); // ...and nothing is stored
  // Two threads, each with its own reference, on one operator: the sequential results.
  at::Tensor got_a, got_b;
  std::thread ta([&] { got_a = stat->forward(x, a).values; });
  std::thread tb([&] { got_b = stat->forward(x, b).values; });
  ta.join(), tb.join();
  EXPECT_TRUE(at::equal(got_a, with_a));
  EXPECT_TRUE(at::equal(got_b, with_b));
}

TEST(Reference, RejectsAnotherStatisticsOrBatchSize) {
  const auto wph = demix::make_statistic(specs()[0], demix::Grid2d{32, 32}, cpu64());
  const auto scov = demix::make_statistic(specs()[2], demix::Grid2d{32, 32}, cpu64());
  const auto wst = demix::make_statistic(specs()[1], demix::Grid2d{32, 32}, cpu64());
  const demix::Reference from_scov = scov->reference(maps(1, 32, 9));
  EXPECT_THROW(wph->forward(maps(1, 32, 10), from_scov), demix::ValueError);
  EXPECT_THROW(wst->forward(maps(1, 32, 10), from_scov), demix::ValueError); // takes none
  const demix::Reference two = wph->reference(maps(2, 32, 11));
  EXPECT_EQ(two.maps(), 2);
  EXPECT_NO_THROW(wph->forward(maps(2, 32, 12), two));
  EXPECT_THROW(wph->forward(maps(3, 32, 12), two), demix::ShapeError);
  EXPECT_THROW(two.get("nothing"), demix::ValueError);
  EXPECT_TRUE(wst->reference(maps(1, 32, 9)).empty());
}

TEST(SquaredDistance, TargetsPerMapFollowTheBatchOffset) {
  const at::Tensor values = at::arange(12, at::kDouble).view({3, 4});
  const at::Tensor target = at::arange(20, at::kDouble).view({5, 4}) * 0.5;
  const demix::SquaredDistance d(target, at::full({5, 4}, 2.0, at::kDouble));
  const at::Tensor rows = at::tensor(std::vector<int64_t>{1, 3});
  // Maps 2, 3, 4 of the call: target rows 2..4, columns 1 and 3, weight 2.
  const at::Tensor expect =
      2 *
      (values.index_select(1, rows) - target.narrow(0, 2, 3).index_select(1, rows)).square().sum(1);
  EXPECT_TRUE(at::allclose(d.chunk(values.index_select(1, rows), rows, 2), expect));
  EXPECT_THROW(demix::SquaredDistance(at::zeros({2, 3, 4})), demix::ShapeError);
  EXPECT_THROW(demix::SquaredDistance(at::zeros({4}), at::zeros({5})), demix::ShapeError);
}

TEST(TotalLoss, IsTheWeightedSumOfItsTerms) {
  const demix::Grid2d grid{32, 32};
  std::shared_ptr<const demix::Statistic> wph = demix::make_statistic(specs()[0], grid, cpu64());
  std::shared_ptr<const demix::Statistic> ps = demix::make_statistic(specs()[3], grid, cpu64());
  const at::Tensor t = maps(1, 32, 13), x = maps(2, 32, 14);
  const demix::Reference ref = wph->reference(t);
  auto d_wph = std::make_shared<demix::SquaredDistance>(wph->forward(t, ref).values[0]);
  auto d_ps = std::make_shared<demix::SquaredDistance>(ps->forward(t).values[0]);
  const demix::LossResult total =
      demix::total_loss_and_grad({{wph, d_wph, ref, 0.5}, {ps, d_ps, {}, 2.0}}, x);
  const demix::LossResult a = wph->loss_and_grad(x, *d_wph, ref), b = ps->loss_and_grad(x, *d_ps);
  EXPECT_LT(rel_diff(total.loss, 0.5 * a.loss + 2 * b.loss), 1e-14);
  EXPECT_LT(rel_diff(total.grad, 0.5 * a.grad + 2 * b.grad), 1e-14);
  EXPECT_THROW(demix::total_loss_and_grad({}, x), demix::ValueError);
  EXPECT_THROW(demix::total_loss_and_grad({{wph, d_wph, ref, -1.0}}, x), demix::ValueError);
}

TEST(Coefficients, ConcatKeepsValuesClassesAndLabels) {
  const demix::Grid2d grid{32, 32};
  const auto wph = demix::make_statistic(specs()[0], grid, cpu64());
  const auto ps = demix::make_statistic(specs()[3], grid, cpu64());
  const at::Tensor x = maps(2, 32, 15);
  const demix::Coefficients a = wph->forward(x), b = ps->forward(x);
  const demix::Coefficients c = demix::Coefficients::concat({a, b}, {"wph", "ps"});
  ASSERT_EQ(c.size(), a.size() + b.size());
  EXPECT_TRUE(c.values.is_complex()); // WPH's values are complex: the spectrum joins them
  EXPECT_TRUE(at::equal(c.values.narrow(1, 0, a.size()), a.values));
  EXPECT_TRUE(at::equal(at::real(c.values.narrow(1, a.size(), b.size())), b.values));
  EXPECT_TRUE(at::equal(c.select("ps.P").label("bin"), b.label("bin")));
  EXPECT_TRUE(at::equal(c.select("wph.S11").label("j1"), a.select("S11").label("j1")));
  EXPECT_TRUE((c.select("ps.P").label("j1") == -1).all().item<bool>()); // no such column there
  // Labels alone concatenate too; repeated class names need prefixes.
  EXPECT_EQ(demix::Coefficients::concat({wph->labels(), ps->labels()}).size(), c.size());
  EXPECT_THROW(demix::Coefficients::concat({b, b}), demix::ValueError);
  EXPECT_THROW(demix::Coefficients::concat({a, b}, {"wph"}), demix::ValueError);
  EXPECT_THROW(demix::Coefficients::concat({a, ps->forward(x.narrow(0, 0, 1))}, {"a", "b"}),
               demix::ShapeError);
}

} // namespace
