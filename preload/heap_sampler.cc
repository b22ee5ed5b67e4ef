#include "preload/heap_sampler.h"

#include <cstring>

namespace dw {
namespace {

constexpr double kLn2 = 0.6931471805599453;

uint64_t NextRandom(uint64_t& state) {
  // xorshift64*: a full-period generator of 64-bit state, good enough for sample gaps.
  state ^= state >> 12;
  state ^= state << 25;
  state ^= state >> 27;
  return state * 0x2545F4914F6CDD1Dull;
}

// Uniform in (0, 1]: never 0, whose logarithm is infinite.
double UniformOpenZero(uint64_t random) {
  return static_cast<double>((random >> 11) + 1) * (1.0 / 9007199254740992.0);
}

// x * 2^exponent by building the power of two's bits (exponent in the normal range).
double TimesPowerOfTwo(double x, int exponent) {
  if (exponent < -1022) return 0.0;
  uint64_t bits = static_cast<uint64_t>(exponent + 1023) << 52;
  double power;
  memcpy(&power, &bits, sizeof(power));
  return x * power;
}

uint64_t Mix(uint64_t value) {
  value ^= value >> 33;
  value *= 0xFF51AFD7ED558CCDull;
  value ^= value >> 33;
  value *= 0xC4CEB9FE1A85EC53ull;
  value ^= value >> 33;
  return value;
}

uint64_t CycleCount() {
#if defined(__x86_64__)
  return __builtin_ia32_rdtsc();
#else
  return 0;
#endif
}

}  // namespace

double NaturalLog(double x) {
  // x = m * 2^e with m in [1, 2); ln m = 2 atanh(z), z = (m-1)/(m+1) in [0, 1/3].
  uint64_t bits;
  memcpy(&bits, &x, sizeof(bits));
  const int exponent = static_cast<int>((bits >> 52) & 0x7ff) - 1023;
  bits = (bits & ((uint64_t{1} << 52) - 1)) | (uint64_t{1023} << 52);
  double mantissa;
  memcpy(&mantissa, &bits, sizeof(mantissa));
  const double z = (mantissa - 1.0) / (mantissa + 1.0);
  const double z2 = z * z;
  double sum = 0.0;
  for (int k = 25; k >= 1; k -= 2) sum = sum * z2 + 1.0 / k;  // z^-1 atanh(z), Horner
  return exponent * kLn2 + 2.0 * z * sum;
}

double ExpNegative(double x) {
  if (x > 745.0) return 0.0;
  // x = k ln2 + r with r in [0, ln2): exp(-x) = 2^-k exp(-r), exp(-r) by its Taylor series.
  const int k = static_cast<int>(x / kLn2);
  const double r = x - k * kLn2;
  double term = 1.0, sum = 1.0;
  for (int n = 1; n <= 18; ++n) {
    term *= -r / n;
    sum += term;
  }
  return TimesPowerOfTwo(sum, -k);
}

double OneMinusExpNegative(double x) {
  if (x < 0.01) {
    // x - x^2/2 + x^3/6 - ..., exact where 1 - exp(-x) would cancel.
    double term = x, sum = x;
    for (int n = 2; n <= 8; ++n) {
      term *= -x / n;
      sum += term;
    }
    return sum;
  }
  return 1.0 - ExpNegative(x);
}

void HeapSampler::Reseed(SampleCountdown& countdown, uint64_t salt) {
  countdown.random = Mix(countdown.random ^ Mix(salt)) | 1;
}

uint64_t HeapSampler::NextGap(SampleCountdown& countdown) const {
  const double gap = -NaturalLog(UniformOpenZero(NextRandom(countdown.random))) * mean_;
  // At most ~37 means (the smallest uniform is 2^-53); kept below 2^62 for any mean.
  return static_cast<uint64_t>(gap) + 1;
}

bool HeapSampler::TakeSlow(SampleCountdown& countdown, size_t size) const {
  if (countdown.random == 0) {
    // The thread's first allocation: no gap drawn yet. Seeded from the TLS block's address and
    // the cycle counter, which differ between threads and between runs.
    Reseed(countdown, reinterpret_cast<uintptr_t>(&countdown) ^ CycleCount());
    countdown.bytes_left = NextGap(countdown);
    if (size < countdown.bytes_left) {
      countdown.bytes_left -= size;
      return false;
    }
  }
  // A sample point falls inside this block. The next gap is measured from its end.
  countdown.bytes_left = NextGap(countdown);
  return true;
}

BlockWeight HeapSampler::WeighSample(uintptr_t block, uint64_t size) const {
  const double probability = OneMinusExpNegative(static_cast<double>(size) / mean_);
  if (probability <= 0.0) return BlockWeight{0, 0};  // size 0: never sampled
  // Unbiased rounding: up with probability equal to the fraction, decided by the address, so
  // that the free of this block computes the same numbers.
  const double fraction = static_cast<double>(Mix(block) >> 11) * (1.0 / 9007199254740992.0);
  return BlockWeight{static_cast<uint64_t>(1.0 / probability + fraction),
                     static_cast<uint64_t>(static_cast<double>(size) / probability + fraction)};
}

}  // namespace dw
