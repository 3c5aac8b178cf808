#include "proxy/forward/slot_claim.hpp"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <string>

#include "proxy/forward/address_pool.hpp"

namespace lpk::proxy {
namespace {

namespace ip = boost::asio::ip;

const ip::network_v4 kPool = AddressPool::default_pool();
const std::string kKey = "https://127.0.0.1:6443|dev";

/// A claimer set of this test alone: real sessions and other runs of this test never meet it.
std::string own_scope() {
  static int counter = 0;
  return "lpk-test-" + std::to_string(::getpid()) + "-" + std::to_string(++counter);
}

ip::network_v4 preferred() {
  return AddressPool::slot(kPool, AddressPool::preferred_slot(kPool, kKey));
}

TEST(SlotClaim, TwoClaimersOfOneTargetGetDifferentSlots) {
  const auto scope = own_scope();
  auto first = SlotClaim::claim(kPool, kKey, {}, scope);
  auto second = SlotClaim::claim(kPool, kKey, {}, scope);
  ASSERT_TRUE(first && second);
  EXPECT_EQ(first->slot(), preferred()) << "the free preferred slot is taken first";
  EXPECT_NE(second->slot(), first->slot());
  EXPECT_EQ(second->slot(), AddressPool::slot(kPool, AddressPool::preferred_slot(kPool, kKey) + 1))
      << "a claimed slot moves to the next one";
}

TEST(SlotClaim, AReleasedClaimIsReusable) {
  const auto scope = own_scope();
  auto first = SlotClaim::claim(kPool, kKey, {}, scope);
  ASSERT_TRUE(first);
  first->release();
  first->release();  // idempotent
  auto again = SlotClaim::claim(kPool, kKey, {}, scope);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->slot(), preferred());
  {
    SlotClaim moved = std::move(*again);  // the claim moves with the object, and dies with it
    EXPECT_EQ(moved.slot(), preferred());
    EXPECT_NE(SlotClaim::claim(kPool, kKey, {}, scope)->slot(), preferred());
  }
  EXPECT_EQ(SlotClaim::claim(kPool, kKey, {}, scope)->slot(), preferred());
}

TEST(SlotClaim, ADeadHoldersClaimIsFree) {
  const auto scope = own_scope();
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t holder = ::fork();
  ASSERT_GE(holder, 0);
  if (holder == 0) {
    auto held = SlotClaim::claim(kPool, kKey, {}, scope);
    char ok = held && held->slot() == preferred() ? 'y' : 'n';
    (void)!::write(ready[1], &ok, 1);
    ::pause();  // holds the claim until killed
    ::_exit(0);
  }
  ::close(ready[1]);
  char ok = 0;
  ASSERT_EQ(::read(ready[0], &ok, 1), 1);
  ::close(ready[0]);
  EXPECT_EQ(ok, 'y');
  {
    auto while_alive = SlotClaim::claim(kPool, kKey, {}, scope);
    ASSERT_TRUE(while_alive);
    EXPECT_NE(while_alive->slot(), preferred()) << "another process holds it";
  }
  ::kill(holder, SIGKILL);  // no chance to release anything
  int status = 0;
  ASSERT_EQ(::waitpid(holder, &status, 0), holder);
  auto after = SlotClaim::claim(kPool, kKey, {}, scope);
  ASSERT_TRUE(after);
  EXPECT_EQ(after->slot(), preferred());
}

TEST(SlotClaim, ARefusedSlotIsSkippedAndLeftFree) {
  const auto scope = own_scope();
  const auto busy = preferred();
  auto claim = SlotClaim::claim(
      kPool, kKey, [&](ip::network_v4 s) { return s != busy; }, scope);
  ASSERT_TRUE(claim);
  EXPECT_NE(claim->slot(), busy);
  auto next = SlotClaim::claim(kPool, kKey, {}, scope);
  ASSERT_TRUE(next);
  EXPECT_EQ(next->slot(), busy) << "a refused slot is not kept claimed";
}

TEST(SlotClaim, NoFreeSlotSaysSo) {
  const auto scope = own_scope();
  const auto one_slot = ip::make_network_v4("127.1.2.0/24");
  ASSERT_EQ(AddressPool::slot_count(one_slot), 1u);
  auto only = SlotClaim::claim(one_slot, kKey, {}, scope);
  ASSERT_TRUE(only);
  EXPECT_EQ(only->slot(), one_slot);
  EXPECT_FALSE(SlotClaim::claim(one_slot, "another target", {}, scope));
  EXPECT_FALSE(SlotClaim::claim(
      kPool, kKey, [](ip::network_v4) { return false; }, scope));
}

}  // namespace
}  // namespace lpk::proxy
