#include "runtime/ipc/spsc_ring.h"

#include <sys/socket.h>

#include <memory>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "runtime/ipc/control_channel.h"
#include "runtime/ipc/data_channel.h"
#include "umbra/control.pb.h"

namespace umbra::ipc {
namespace {

struct Rec {
  uint64_t seq;
  uint64_t check;
};

class RingMemory {
 public:
  explicit RingMemory(uint32_t entries)
      : bytes_(SpscRing<Rec>::BytesFor(entries) + 64),
        base_(reinterpret_cast<std::byte*>((reinterpret_cast<uintptr_t>(bytes_.data()) + 63) & ~uintptr_t{63})),
        producer_(base_, entries), consumer_(base_, entries) {
    producer_.Reset();
    consumer_.AdoptIndices(0);
  }
  SpscRing<Rec>& producer() { return producer_; }
  SpscRing<Rec>& consumer() { return consumer_; }
  RingHeader* header() { return reinterpret_cast<RingHeader*>(base_); }

 private:
  std::vector<std::byte> bytes_;
  std::byte* base_;
  SpscRing<Rec> producer_;
  SpscRing<Rec> consumer_;
};

TEST(SpscRing, EmptyRingPopsNothing) {
  RingMemory m(8);
  Rec r;
  EXPECT_FALSE(m.consumer().TryPop(r));
  EXPECT_EQ(m.consumer().Available(), 0u);
}

TEST(SpscRing, TheConsumerSaysWhereItRunsAndAReplacementSaysItAgain) {
  RingMemory m(8);
  EXPECT_EQ(m.producer().consumer_cpu(), -1) << "not known after Reset";
  m.consumer().NoteCpu(1);
  EXPECT_EQ(m.producer().consumer_cpu(), 1);
  m.header()->consumer_cpu.store(5);  // the peer's word: it may hold anything
  m.consumer().NoteCpu(1);
  EXPECT_EQ(m.producer().consumer_cpu(), 5) << "stored only when the consumer's CPU changes";
  m.consumer().NoteCpu(0);
  EXPECT_EQ(m.producer().consumer_cpu(), 0);
  m.header()->consumer_cpu.store(-1);
  m.consumer().AdoptIndices(0);  // a new consumer starts from nothing noted
  m.consumer().NoteCpu(0);
  EXPECT_EQ(m.producer().consumer_cpu(), 0);
}

TEST(SpscRing, FullRingRefusesUntilTheConsumerReleases) {
  RingMemory m(4);
  for (uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(m.producer().TryPush({i, i}));
  EXPECT_FALSE(m.producer().TryPush({9, 9}));
  m.producer().Publish();
  Rec r;
  ASSERT_TRUE(m.consumer().TryPop(r));
  EXPECT_EQ(r.seq, 0u);
  EXPECT_FALSE(m.producer().TryPush({9, 9})) << "not released yet";
  m.consumer().Release();
  EXPECT_TRUE(m.producer().TryPush({4, 4}));
}

TEST(SpscRing, RecordsSurviveManyWraparoundsInOrder) {
  RingMemory m(4);
  uint64_t next_in = 0, next_out = 0;
  for (int round = 0; round < 10000; ++round) {
    while (m.producer().TryPush({next_in, ~next_in})) ++next_in;
    m.producer().Publish();
    Rec r;
    int popped = 0;
    while (popped < 3 && m.consumer().TryPop(r)) {
      ASSERT_EQ(r.seq, next_out);
      ASSERT_EQ(r.check, ~next_out);
      ++next_out;
      ++popped;
    }
    m.consumer().Release();
  }
  EXPECT_GT(next_out, 29000u);
}

TEST(SpscRing, IndicesWrapAroundTwoToTheThirtySecond) {
  RingMemory m(8);
  const uint32_t start = 0xfffffffcu;
  m.header()->head.store(start);
  m.header()->tail.store(start);
  m.producer().AdoptIndices(start);
  m.consumer().AdoptIndices(start);
  for (uint64_t i = 0; i < 8; ++i) ASSERT_TRUE(m.producer().TryPush({i, 0}));
  m.producer().Publish();
  Rec r;
  for (uint64_t i = 0; i < 8; ++i) {
    ASSERT_TRUE(m.consumer().TryPop(r));
    EXPECT_EQ(r.seq, i);
  }
  EXPECT_FALSE(m.consumer().poisoned());
}

TEST(SpscRing, ProducerIndexBeyondCapacityPoisonsTheConsumer) {
  RingMemory m(8);
  m.header()->head.store(9);  // claims 9 records in an 8-slot ring
  Rec r;
  EXPECT_FALSE(m.consumer().TryPop(r));
  EXPECT_TRUE(m.consumer().poisoned());
}

TEST(SpscRing, ProducerIndexGoingBackwardsPoisonsTheConsumer) {
  RingMemory m(8);
  ASSERT_TRUE(m.producer().TryPush({0, 0}));
  m.producer().Publish();
  Rec r;
  ASSERT_TRUE(m.consumer().TryPop(r));
  m.header()->head.store(0xffffffffu);
  EXPECT_FALSE(m.consumer().TryPop(r));
  EXPECT_TRUE(m.consumer().poisoned());
}

TEST(SpscRing, ConsumerIndexAheadOfProducerPoisonsTheProducer) {
  RingMemory m(4);
  for (uint64_t i = 0; i < 4; ++i) ASSERT_TRUE(m.producer().TryPush({i, 0}));
  m.header()->tail.store(100);  // the consumer claims to have read what was never written
  EXPECT_FALSE(m.producer().TryPush({5, 0}));
  EXPECT_TRUE(m.producer().poisoned());
}

TEST(SpscRing, DoorbellIsNeededOnlyWhenTheConsumerSleeps) {
  RingMemory m(8);
  ASSERT_TRUE(m.producer().TryPush({1, 0}));
  EXPECT_FALSE(m.producer().Publish()) << "consumer awake: no doorbell";
  Rec r;
  ASSERT_TRUE(m.consumer().TryPop(r));
  m.consumer().Release();
  ASSERT_TRUE(m.consumer().PrepareToSleep());
  ASSERT_TRUE(m.producer().TryPush({2, 0}));
  EXPECT_TRUE(m.producer().Publish()) << "consumer asleep: ring the doorbell";
  ASSERT_TRUE(m.producer().TryPush({3, 0}));
  EXPECT_FALSE(m.producer().Publish()) << "already rung once";
}

TEST(SpscRing, PrepareToSleepRefusesWhenRecordsArrived) {
  RingMemory m(8);
  ASSERT_TRUE(m.producer().TryPush({1, 0}));
  m.producer().Publish();
  EXPECT_FALSE(m.consumer().PrepareToSleep());
}

// Run under TSan: one producer thread, one consumer thread, blocking on
// eventfd doorbells with event suppression; nothing lost, nothing repeated.
TEST(SpscRing, ConcurrentProducerAndConsumerWithDoorbells) {
  auto ch = DataChannel::Create("ring-test", {.ring_entries = 16, .buffer_size = 64, .buffer_count = 1});
  ASSERT_TRUE(ch.has_value());
  DataChannel& c = **ch;
  auto& producer = c.submit();
  SpscRing<Descriptor> consumer(c.region().data() + c.layout().submit_ring_offset, 16);
  constexpr uint64_t kCount = 200000;
  std::thread reader([&] {
    uint64_t expected = 0;
    Descriptor d;
    while (expected < kCount) {
      while (consumer.TryPop(d)) {
        ASSERT_EQ(d.id, expected);
        ++expected;
      }
      consumer.Release();
      if (expected == kCount) break;
      if (consumer.PrepareToSleep()) c.submit_doorbell().Wait(-1);
      consumer.CancelSleep();
    }
  });
  for (uint64_t i = 0; i < kCount;) {
    if (producer.TryPush(Descriptor{.id = i})) {
      ++i;
      if (i % 7 == 0 && producer.Publish()) c.submit_doorbell().Signal();
      continue;
    }
    if (producer.Publish()) c.submit_doorbell().Signal();
  }
  if (producer.Publish()) c.submit_doorbell().Signal();
  reader.join();
}

TEST(ControlChannel, CarriesMessagesAndDescriptors) {
  auto pair = ControlChannel::CreatePair();
  ASSERT_TRUE(pair.has_value());
  auto& [a, b] = *pair;
  auto ev = EventFd::Create();
  proto::HostToDriver out;
  out.mutable_call()->set_id(7);
  out.mutable_call()->set_body("abc");
  int fd = ev->fd();
  ASSERT_TRUE(a.Send(out, {&fd, 1}).has_value());
  proto::HostToDriver in;
  auto fds = b.Receive(in);
  ASSERT_TRUE(fds.has_value());
  EXPECT_EQ(in.call().id(), 7u);
  EXPECT_EQ(in.call().body(), "abc");
  ASSERT_EQ(fds->size(), 1u);
  // The received descriptor is the same eventfd: a signal on it is seen on ours.
  EventFd received(std::move((*fds)[0]));
  received.Signal();
  EXPECT_TRUE(ev->Wait(0));
}

TEST(ControlChannel, EmptyMessageIsNotEndOfFile) {
  auto pair = ControlChannel::CreatePair();
  auto& [a, b] = *pair;
  proto::Heartbeat empty;
  ASSERT_TRUE(a.Send(empty).has_value());
  proto::Heartbeat in;
  EXPECT_TRUE(b.Receive(in).has_value());
}

TEST(ControlChannel, PeerCloseIsNoDeviceAndGarbageIsProtocol) {
  auto pair = ControlChannel::CreatePair();
  auto& [a, b] = *pair;
  const char junk[] = "\xff\xff\xff\xff\xff";
  ASSERT_EQ(send(a.fd(), junk, sizeof junk, 0), static_cast<ssize_t>(sizeof junk));
  proto::DriverToHost in;
  auto r = b.Receive(in, Blocking::kDontWait);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, Errc::kProtocol);
  EXPECT_EQ(b.Receive(in, Blocking::kDontWait).error().code, Errc::kUnavailable);
  a = ControlChannel();
  EXPECT_EQ(b.Receive(in).error().code, Errc::kNoDevice);
}

TEST(ControlChannel, OversizedDatagramIsProtocolViolation) {
  auto pair = ControlChannel::CreatePair();
  auto& [a, b] = *pair;
  std::string big(kMaxMessageBytes + 100, 'x');
  ASSERT_EQ(send(a.fd(), big.data(), big.size(), 0), static_cast<ssize_t>(big.size()));
  proto::DriverToHost in;
  EXPECT_EQ(b.Receive(in).error().code, Errc::kProtocol);
}

TEST(DataChannel, LayoutFromAHostilePeerIsValidated) {
  DataLayoutInfo l{.region_size = 4096,
                   .submit_ring_offset = 0,
                   .complete_ring_offset = 1024,
                   .ring_entries = 3,
                   .pool_offset = 2048,
                   .pool_size = 1024,
                   .buffer_size = 256};
  EXPECT_FALSE(l.Validate().has_value()) << "entries not a power of two";
  l.ring_entries = 4;
  EXPECT_TRUE(l.Validate().has_value());
  l.pool_size = 1u << 30;
  EXPECT_FALSE(l.Validate().has_value()) << "pool outside the region";
  l.pool_size = 1024;
  l.complete_ring_offset = 4090;
  EXPECT_FALSE(l.Validate().has_value()) << "ring outside the region";
}

}  // namespace
}  // namespace umbra::ipc
