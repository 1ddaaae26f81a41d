// KernelInodes (fs/fuse/kernel_inodes.h): the daemon's record of the inodes the kernel holds.
#include "fs/fuse/kernel_inodes.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace fs::fuse {
namespace {

TEST(KernelInodesTest, AddForgetAcrossWordsAndPages) {
  KernelInodes held;
  const uint64_t inos[] = {
      1, 2, 63, 64, 65, (1u << 19) - 1, 1u << 19, 123456789, KernelInodes::kLimit - 1};
  for (uint64_t ino : inos) EXPECT_FALSE(held.Holds(ino)) << ino;
  for (uint64_t ino : inos) held.Add(ino);
  for (uint64_t ino : inos) EXPECT_TRUE(held.Holds(ino)) << ino;
  EXPECT_FALSE(held.Holds(3));
  EXPECT_FALSE(held.Holds(66));
  held.Forget(64);
  held.Forget(1u << 19);
  EXPECT_FALSE(held.Holds(64));
  EXPECT_TRUE(held.Holds(63));
  EXPECT_TRUE(held.Holds(65));
  EXPECT_FALSE(held.Holds(1u << 19));
  held.Forget(999999999);  // never added, page never made: nothing happens
  EXPECT_FALSE(held.Holds(999999999));
}

// Past the limit, and the .kvfs views (bit 63), nothing is held: their entries always carry
// attributes, which costs nothing but a little speed.
TEST(KernelInodesTest, NumbersPastTheLimitAreNeverHeld) {
  KernelInodes held;
  for (uint64_t ino : {KernelInodes::kLimit, uint64_t{1} << 63 | 5}) {
    held.Add(ino);
    EXPECT_FALSE(held.Holds(ino));
    held.Forget(ino);
  }
}

// Threads adding neighbours (the same words, a page made by whichever comes first) lose none.
TEST(KernelInodesTest, ConcurrentAddsOfNeighbours) {
  KernelInodes held;
  const uint64_t base = 5u << 19;  // a page nobody made yet
  std::vector<std::thread> threads;
  for (uint64_t t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (uint64_t i = t; i < 4096; i += 4) held.Add(base + i);
    });
  }
  for (std::thread& t : threads) t.join();
  for (uint64_t i = 0; i < 4096; ++i) ASSERT_TRUE(held.Holds(base + i)) << i;
}

}  // namespace
}  // namespace fs::fuse
