#include "proxy/forward/address_pool.hpp"

#include <gtest/gtest.h>

#include <set>
#include <stdexcept>
#include <string>

namespace lpk::proxy {
namespace {

namespace ip = boost::asio::ip;

ip::network_v4 net(const char* cidr) { return ip::make_network_v4(cidr); }

TEST(AddressPool, SameNameSameAddressAcrossPools) {
  AddressPool a(AddressPool::default_pool());
  AddressPool b(AddressPool::default_pool());
  b.allocate("something-else");  // what else was allocated first does not matter (no collision)
  auto x = a.allocate("redis");
  auto y = b.allocate("redis");
  ASSERT_TRUE(x && y);
  EXPECT_EQ(*x, *y);
  EXPECT_EQ(*x, AddressPool::preferred(AddressPool::default_pool(), "redis"));
  EXPECT_EQ(a.allocate("redis"), x) << "a second allocation returns the same address";
  EXPECT_EQ(a.size(), 1u);
}

TEST(AddressPool, NamesAreCaseInsensitive) {
  AddressPool pool(AddressPool::default_pool());
  auto lower = pool.allocate("redis-master.dev");
  auto upper = pool.allocate("Redis-Master.DEV");
  ASSERT_TRUE(lower && upper);
  EXPECT_EQ(*lower, *upper);
  EXPECT_EQ(pool.size(), 1u);
  EXPECT_EQ(pool.name_of(*lower), "redis-master.dev");
  EXPECT_EQ(AddressPool::preferred(AddressPool::default_pool(), "REDIS"),
            AddressPool::preferred(AddressPool::default_pool(), "redis"));
}

TEST(AddressPool, AddressesStayInsideThePoolAndAvoidItsEnds) {
  AddressPool pool(AddressPool::default_pool());
  const auto range = AddressPool::default_pool().hosts();
  std::set<ip::address_v4> seen;
  for (int i = 0; i < 2000; ++i) {
    auto a = pool.allocate("svc-" + std::to_string(i));
    ASSERT_TRUE(a);
    EXPECT_EQ(a->to_uint() >> 16, (127u << 8) | 77u) << a->to_string();
    EXPECT_NE(*a, ip::make_address_v4("127.77.0.0"));
    EXPECT_NE(*a, ip::make_address_v4("127.77.255.255"));
    EXPECT_TRUE(range.find(*a) != range.end()) << a->to_string();
    EXPECT_TRUE(seen.insert(*a).second) << "two names got " << a->to_string();
  }
}

TEST(AddressPool, CollisionsMoveToTheNextFreeAddress) {
  const auto small = net("127.1.2.0/29");  // 6 usable addresses
  // Find two names that hash to the same address.
  std::string first, second;
  for (int i = 0; i < 100 && second.empty(); ++i) {
    for (int j = 0; j < i; ++j) {
      auto a = "n" + std::to_string(i), b = "n" + std::to_string(j);
      if (AddressPool::preferred(small, a) == AddressPool::preferred(small, b)) {
        first = b;
        second = a;
        break;
      }
    }
  }
  ASSERT_FALSE(second.empty());
  AddressPool pool(small);
  auto x = pool.allocate(first);
  auto y = pool.allocate(second);
  ASSERT_TRUE(x && y);
  EXPECT_EQ(*x, AddressPool::preferred(small, first));
  EXPECT_NE(*x, *y);
  const auto next = x->to_uint() + 1 > ip::make_address_v4("127.1.2.6").to_uint()
                        ? ip::make_address_v4("127.1.2.1")
                        : ip::address_v4(x->to_uint() + 1);
  EXPECT_EQ(*y, next) << "probing takes the next address, wrapping inside the pool";
  // Deterministic: the same names in the same order give the same answer.
  AddressPool again(small);
  again.allocate(first);
  EXPECT_EQ(again.allocate(second), y);
  EXPECT_EQ(pool.name_of(*y), second);
}

TEST(AddressPool, FullPoolSaysSo) {
  AddressPool pool(net("127.9.9.0/29"));
  std::set<ip::address_v4> seen;
  for (int i = 0; i < 6; ++i) {
    auto a = pool.allocate("svc" + std::to_string(i));
    ASSERT_TRUE(a) << i;
    seen.insert(*a);
  }
  EXPECT_EQ(seen.size(), 6u);
  EXPECT_FALSE(pool.allocate("one-too-many"));
  EXPECT_TRUE(pool.allocate("svc3")) << "names already placed keep their address";
  EXPECT_FALSE(pool.name_of(ip::make_address_v4("127.9.9.0")));
  EXPECT_FALSE(pool.name_of(ip::make_address_v4("127.9.9.7")));
}

TEST(AddressPool, SmallestPoolHasTwoAddresses) {
  AddressPool pool(net("127.0.0.4/30"));
  auto a = pool.allocate("a");
  auto b = pool.allocate("b");
  ASSERT_TRUE(a && b);
  std::set<std::string> got{a->to_string(), b->to_string()};
  EXPECT_EQ(got, (std::set<std::string>{"127.0.0.5", "127.0.0.6"}));
  EXPECT_FALSE(pool.allocate("c"));
}

TEST(AddressPool, MoveAwayNeverGivesTheHeldAddressAgain) {
  const auto small = net("127.9.8.0/29");  // 6 usable addresses
  AddressPool pool(small);
  auto held = pool.allocate("web.demo");
  ASSERT_TRUE(held);
  auto moved = pool.move_away("WEB.demo");
  ASSERT_TRUE(moved);
  EXPECT_NE(*moved, *held);
  EXPECT_EQ(pool.allocate("web.demo"), moved) << "the name keeps its new address";
  EXPECT_FALSE(pool.name_of(*held)) << "the held address belongs to no name";
  for (int i = 0; i < 4; ++i) {
    auto a = pool.allocate("svc" + std::to_string(i));
    ASSERT_TRUE(a) << i;
    EXPECT_NE(*a, *held);
  }
  EXPECT_FALSE(pool.allocate("one-too-many")) << "the held address still counts as taken";
  EXPECT_FALSE(pool.move_away("svc0")) << "nowhere left to move to";
  EXPECT_FALSE(pool.allocate("svc0"));
}

TEST(AddressPool, SlotsSplitThePoolEvenly) {
  const auto pool = AddressPool::default_pool();
  ASSERT_EQ(AddressPool::slot_count(pool), 64u);
  EXPECT_EQ(AddressPool::slot(pool, 0), net("127.77.0.0/22"));
  EXPECT_EQ(AddressPool::slot(pool, 5), net("127.77.20.0/22"));
  EXPECT_EQ(AddressPool::slot(pool, 63), net("127.77.252.0/22"));
  EXPECT_EQ(AddressPool::slot(pool, 64), AddressPool::slot(pool, 0)) << "indexes wrap";
  EXPECT_EQ(AddressPool::slot_count(net("127.0.0.0/8")), 64u);
  EXPECT_EQ(AddressPool::slot(net("127.0.0.0/8"), 1), net("127.4.0.0/14"));
  EXPECT_EQ(AddressPool::slot_count(net("127.5.0.0/20")), 16u);  // slots keep 256 addresses
  EXPECT_EQ(AddressPool::slot(net("127.5.0.0/20"), 15), net("127.5.15.0/24"));
  EXPECT_EQ(AddressPool::slot_count(net("127.5.5.0/24")), 1u);
  EXPECT_EQ(AddressPool::slot(net("127.5.5.0/24"), 0), net("127.5.5.0/24"));
  EXPECT_EQ(AddressPool::slot_count(net("127.0.0.4/30")), 1u);
}

TEST(AddressPool, TheSameTargetPrefersTheSameSlot) {
  const auto pool = AddressPool::default_pool();
  const std::string a = "https://10.0.0.1:6443|dev";
  EXPECT_EQ(AddressPool::preferred_slot(pool, a), AddressPool::preferred_slot(pool, a));
  EXPECT_LT(AddressPool::preferred_slot(pool, a), 64u);
  std::set<std::uint32_t> slots;
  for (int i = 0; i < 32; ++i) {
    slots.insert(AddressPool::preferred_slot(pool, "https://c" + std::to_string(i) + "|dev"));
  }
  EXPECT_GT(slots.size(), 16u) << "targets spread over the slots";
}

TEST(AddressPool, RejectsPoolsOutsideLoopback) {
  for (const char* cidr : {"10.0.0.0/8", "128.0.0.0/16", "0.0.0.0/0", "126.0.0.0/7",
                           "192.168.1.0/24"}) {
    EXPECT_THROW(AddressPool(net(cidr)), std::invalid_argument) << cidr;
  }
  try {
    AddressPool p(net("10.1.0.0/16"));
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.0/8"), std::string::npos) << e.what();
  }
  EXPECT_THROW(AddressPool(net("127.0.0.1/32")), std::invalid_argument);
  EXPECT_THROW(AddressPool(net("127.0.0.0/31")), std::invalid_argument);
  EXPECT_NO_THROW(AddressPool(net("127.0.0.0/8")));
  EXPECT_NO_THROW(AddressPool(net("127.200.0.0/16")));
  // A pool given with host bits set is taken as its network.
  AddressPool p(net("127.5.5.5/24"));
  auto a = p.allocate("x");
  ASSERT_TRUE(a);
  EXPECT_EQ(a->to_uint() >> 8, ip::make_address_v4("127.5.5.0").to_uint() >> 8);
}

}  // namespace
}  // namespace lpk::proxy
