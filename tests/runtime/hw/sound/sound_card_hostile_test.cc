// The card against a buggy or hostile driver: every refused value is counted,
// leaves the stream stopped, and the card keeps serving.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <thread>

#include "runtime/hw/sound/sound_card.h"
#include "runtime/hw/sound/wav_compare.h"
#include "runtime/hw/sound/wav_microphone.h"
#include "runtime/hw/sound/wav_speaker.h"
#include "tests/runtime/hw/sound/test_driver.h"

namespace umbra::hw::sound {
namespace {

using testing::TestDriver;

constexpr AudioFormat kFormat{48000, 2, SoundFormat::kS16Le};
constexpr uint64_t kDma = 64 * 1024;

class Hostile : public ::testing::Test {
 protected:
  void SetUp() override {
    SoundCardOptions options;
    options.name = "hostile";
    options.clock = ClockMode::kManual;
    options.dma_size = kDma;
    options.microphone = WavMicrophone::FromWav(GenerateTestSignal(kFormat, 4800), SourceEnd::kLoop);
    options.on_fault = [this](const SoundFault& f) { reported_.push_back(f); };
    auto card = SoundCard::Create(std::move(options));
    ASSERT_TRUE(card) << card.error().ToString();
    card_ = std::move(*card);
    driver_ = std::make_unique<TestDriver>(*card_);
  }

  SoundStreamRegs& playback() { return driver_->stream(SoundStream::kPlayback); }

  // Configures a valid playback stream, lets `mutate` spoil it, starts it.
  void StartWith(const std::function<void(SoundStreamRegs&)>& mutate) {
    card_->Reset();
    driver_->Configure(SoundStream::kPlayback, kFormat, 240, 4, 0);
    mutate(playback());
    driver_->Command(SoundStream::kPlayback, SoundCommand::kStart);
    ASSERT_TRUE(card_->Advance(0));
  }

  std::unique_ptr<SoundCard> card_;
  std::unique_ptr<TestDriver> driver_;
  std::vector<SoundFault> reported_;
};

struct BadConfig {
  const char* what;
  std::function<void(SoundStreamRegs&)> mutate;
  SoundError error;
};

TEST_F(Hostile, InvalidConfigurationsAreRefusedAndLeaveTheStreamStopped) {
  const BadConfig cases[] = {
      {"rate 0", [](auto& r) { r.rate = 0; }, SoundError::kBadRate},
      {"rate 47999", [](auto& r) { r.rate = 47999; }, SoundError::kBadRate},
      {"0 channels", [](auto& r) { r.channels = 0; }, SoundError::kBadChannels},
      {"9 channels", [](auto& r) { r.channels = 9; }, SoundError::kBadChannels},
      {"format 0", [](auto& r) { r.format = 0; }, SoundError::kBadFormat},
      {"format 77", [](auto& r) { r.format = 77; }, SoundError::kBadFormat},
      {"period 0", [](auto& r) { r.period_frames = 0; }, SoundError::kBadPeriodFrames},
      {"period huge", [](auto& r) { r.period_frames = 0xFFFFFFFF; }, SoundError::kBadPeriodFrames},
      {"1 period", [](auto& r) { r.periods = 1; }, SoundError::kBadPeriods},
      {"many periods", [](auto& r) { r.periods = 1u << 20; }, SoundError::kBadPeriods},
      {"buffer past pool end", [](auto& r) { r.buffer_offset = kDma - 16; }, SoundError::kBufferOutsidePool},
      {"offset wraps", [](auto& r) { r.buffer_offset = ~uint64_t{0} - 15; }, SoundError::kBufferOutsidePool},
      {"offset beyond pool", [](auto& r) { r.buffer_offset = kDma + 4096; }, SoundError::kBufferOutsidePool},
      {"misaligned", [](auto& r) { r.buffer_offset = 3; }, SoundError::kBufferMisaligned},
      {"ring larger than pool",
       [](auto& r) {
         r.period_frames = 65536;
         r.periods = 1024;
       },
       SoundError::kBufferOutsidePool},
  };
  uint64_t faults = 0;
  for (const BadConfig& c : cases) {
    StartWith(c.mutate);
    EXPECT_EQ(driver_->state(SoundStream::kPlayback), SoundStreamState::kStopped) << c.what;
    EXPECT_EQ(playback().error.load(), static_cast<uint32_t>(c.error)) << c.what;
    EXPECT_EQ(card_->faults(), ++faults) << c.what;
    EXPECT_EQ(driver_->regs().faults.load(), faults) << c.what;
    EXPECT_NE(driver_->regs().int_cause.load() & kIntFault, 0u) << c.what;
    ASSERT_FALSE(reported_.empty());
    EXPECT_EQ(reported_.back().error, c.error) << c.what;
    EXPECT_EQ(reported_.back().stream, 0) << c.what;
  }
  // The same card still plays for a well-behaved driver.
  StartWith([](auto&) {});
  EXPECT_EQ(driver_->state(SoundStream::kPlayback), SoundStreamState::kRunning);
  ASSERT_TRUE(card_->Advance(3));
  EXPECT_EQ(playback().hw_ptr.load(), 720u);
  EXPECT_EQ(card_->faults(), faults);
}

TEST_F(Hostile, ApplPtrBeyondTheRingStopsTheStream) {
  StartWith([](auto&) {});
  ASSERT_TRUE(card_->Advance(1));
  playback().appl_ptr.store(10000);  // more than the ring can hold
  ASSERT_TRUE(card_->Advance(1));
  EXPECT_EQ(driver_->state(SoundStream::kPlayback), SoundStreamState::kStopped);
  EXPECT_EQ(playback().error.load(), static_cast<uint32_t>(SoundError::kBadApplPtr));
  EXPECT_EQ(card_->faults(), 1u);
  EXPECT_NE(driver_->regs().int_cause.load() & kIntStopped, 0u);
}

TEST_F(Hostile, CaptureApplPtrAheadOfTheHardwareStopsTheStream) {
  card_->Reset();
  driver_->Configure(SoundStream::kCapture, kFormat, 240, 4, 8192);
  driver_->Command(SoundStream::kCapture, SoundCommand::kStart);
  ASSERT_TRUE(card_->Advance(2));
  driver_->stream(SoundStream::kCapture).appl_ptr.store(100000);
  ASSERT_TRUE(card_->Advance(1));
  EXPECT_EQ(driver_->state(SoundStream::kCapture), SoundStreamState::kStopped);
  EXPECT_EQ(driver_->stream(SoundStream::kCapture).error.load(), static_cast<uint32_t>(SoundError::kBadApplPtr));
  EXPECT_EQ(card_->faults(), 1u);
}

TEST_F(Hostile, UnknownCommandsAndControlBitsAreRefused) {
  StartWith([](auto&) {});
  playback().command.store(12345);
  driver_->Ring();
  ASSERT_TRUE(card_->Advance(0));
  EXPECT_EQ(playback().error.load(), static_cast<uint32_t>(SoundError::kBadCommand));
  EXPECT_EQ(driver_->state(SoundStream::kPlayback), SoundStreamState::kStopped);
  driver_->regs().control.store(0x80);
  ASSERT_TRUE(card_->Advance(0));
  EXPECT_EQ(driver_->regs().fault_code.load(), static_cast<uint32_t>(SoundError::kBadControl));
  EXPECT_EQ(card_->faults(), 2u);
  EXPECT_EQ(reported_.back().stream, -1);
}

TEST_F(Hostile, BadVolumeIsRefusedOncePerValueAndTheLastGoodOneKept) {
  StartWith([](auto&) {});
  driver_->regs().volume.store(1000);
  ASSERT_TRUE(card_->Advance(5));
  EXPECT_EQ(card_->faults(), 1u) << "one fault per refused value, not per period";
  EXPECT_EQ(driver_->regs().fault_code.load(), static_cast<uint32_t>(SoundError::kBadVolume));
  EXPECT_EQ(driver_->state(SoundStream::kPlayback), SoundStreamState::kRunning);
  driver_->regs().mute.store(7);
  ASSERT_TRUE(card_->Advance(1));
  EXPECT_EQ(card_->faults(), 2u);
}

TEST_F(Hostile, DeviceOwnedRegistersWrittenByTheDriverAreIgnored) {
  StartWith([](auto&) {});
  ASSERT_TRUE(card_->Advance(2));
  playback().hw_ptr.store(999999);
  playback().state.store(77);
  ASSERT_TRUE(card_->Advance(1));
  EXPECT_EQ(playback().hw_ptr.load(), 720u);
  EXPECT_EQ(playback().state.load(), static_cast<uint32_t>(SoundStreamState::kRunning));
}

TEST_F(Hostile, RandomRegisterGarbageNeverCrashesTheCard) {
  std::mt19937_64 rng(42);
  auto* words = reinterpret_cast<std::atomic<uint32_t>*>(&driver_->regs());
  for (int round = 0; round < 2000; ++round) {
    // Mostly plausible values, sometimes garbage, in any register.
    for (int k = 0; k < 8; ++k) {
      uint32_t index = rng() % (sizeof(SoundRegs) / 4);
      uint32_t value = rng() % 4 == 0 ? static_cast<uint32_t>(rng()) : static_cast<uint32_t>(rng() % 300);
      words[index].store(value, std::memory_order_relaxed);
    }
    if (rng() % 3 == 0) driver_->Command(static_cast<SoundStream>(rng() % 2), static_cast<SoundCommand>(rng() % 5));
    ASSERT_TRUE(card_->Advance(rng() % 3));
    if (rng() % 50 == 0) card_->Reset();
  }
  EXPECT_GT(card_->faults(), 0u);
  // Still a working card afterwards.
  StartWith([](auto&) {});
  ASSERT_TRUE(card_->Advance(2));
  EXPECT_EQ(playback().hw_ptr.load(), 480u);
}

// Reset() from another thread while the hardware thread runs and a driver
// keeps (re)programming the card: no crash, no race (run under TSan).
TEST(HostileThreaded, RacingResetWhileTheHardwareThreadRuns) {
  SoundCardOptions options;
  options.name = "racing";
  options.clock = ClockMode::kRealTime;
  options.speed = 50.0;
  options.dma_size = kDma;
  auto path = (std::filesystem::temp_directory_path() / ("umbra-sound-race-" + std::to_string(::getpid()) + ".wav"));
  auto speaker = WavSpeaker::Create({.path = path.string()});
  ASSERT_TRUE(speaker);
  options.speaker = std::move(*speaker);
  options.microphone = WavMicrophone::FromWav(GenerateTestSignal(kFormat, 4800), SourceEnd::kLoop);
  auto card = SoundCard::Create(std::move(options));
  ASSERT_TRUE(card);
  (*card)->Start();
  TestDriver driver(**card);
  std::atomic<bool> done{false};
  std::thread resetter([&] {
    while (!done.load()) {
      (*card)->Reset();
      ::usleep(500);
    }
  });
  std::mt19937_64 rng(7);
  for (int round = 0; round < 1500; ++round) {
    SoundStream s = static_cast<SoundStream>(round % 2);
    uint32_t period = rng() % 4 == 0 ? static_cast<uint32_t>(rng()) : 64;
    driver.Configure(s, kFormat, period, 4, (rng() % 2) * 4096);
    driver.stream(s).appl_ptr.store(rng() % 5 == 0 ? rng() : 256);
    driver.regs().int_mask.store(static_cast<uint32_t>(rng()));
    driver.Command(s, static_cast<SoundCommand>(rng() % 5));
    if (round % 10 == 0) ::usleep(200);
  }
  done.store(true);
  resetter.join();
  (*card)->Reset();
  // A well-behaved driver still gets service.
  driver.Configure(SoundStream::kCapture, kFormat, 240, 4, 0);
  driver.regs().int_mask.store(kIntAll & ~kIntCapturePeriod);
  driver.Command(SoundStream::kCapture, SoundCommand::kStart);
  EXPECT_NE(driver.WaitInterrupt(5000) & kIntCapturePeriod, 0u);
  (*card)->Stop();
  EXPECT_GT((*card)->faults(), 0u);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace umbra::hw::sound
