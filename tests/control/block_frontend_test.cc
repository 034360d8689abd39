// The block frontend (a shadowed disk as a file through FUSE), used by
// programs nobody here wrote while the disk's driver keeps crashing:
// fio with verification, losetup + mkfs.ext4 + mount + tar + e2fsck, and an
// sqlite3 transaction storm. Needs root, /dev/fuse, loop devices and the
// programs; skips, saying which is missing, otherwise.
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/control/running_machine.h"

namespace umbra::testing {
namespace {

using namespace std::chrono_literals;

// 64 MiB of 4 KiB blocks; the restart budget lets the driver die often.
const std::string kMachine = MachineHead("blk") + R"pb(
devices {
  name: "disk0" bus: "platform" compatible: "umbra,disk-emu" device_class: "block"
  settings { key: "blocks" value: "16384" }
  settings { key: "queue_depth" value: "32" }
  frontend {}
}
drivers { name: "disk" bus: "platform" compatible: "umbra,disk-emu" binary: "umbra-driver-disk" }
)pb";

bool Have(const char* program) { return Shell(std::string("command -v ") + program).code == 0; }

// Why this machine cannot run the test, or "" when it can.
std::string Missing(std::initializer_list<const char*> programs) {
  if (geteuid() != 0) return "needs root (mount, losetup)";
  if (access("/dev/fuse", R_OK | W_OK) != 0) return "needs /dev/fuse";
  for (const char* p : programs) {
    if (!Have(p)) return std::string("needs ") + p + " (scripts/bootstrap.sh installs it)";
  }
  return "";
}

class BlockFrontendTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("umbra-blkfe-" + std::to_string(getpid()));
    std::filesystem::create_directories(dir_);
    machine_file_ = (dir_ / "blk.textproto").string();
    std::ofstream(machine_file_) << kMachine;
  }
  void TearDown() override {
    if (!mount_.empty()) Shell("umount -l " + mount_);
    if (!loop_.empty()) Shell("losetup -d " + loop_);
    machine_.reset();
    Shell("umount -l " + file() + " 2>/dev/null");  // a mount a killed run left behind
    std::filesystem::remove_all(dir_);
  }
  bool Start() {
    machine_ = std::make_unique<RunningMachine>((dir_ / "run").string());
    return machine_->Start(machine_file_) && machine_->WaitFor("\"kind\":\"frontend\"", 5s);
  }
  std::string file() const { return (dir_ / "run" / "disk0").string(); }

  std::filesystem::path dir_;
  std::string machine_file_;
  std::unique_ptr<RunningMachine> machine_;
  std::string loop_;   // attached loop device, detached by TearDown
  std::string mount_;  // mounted folder, unmounted by TearDown
};

TEST_F(BlockFrontendTest, FileHasTheDisksSizeAndKeepsWhatIsWritten) {
  if (auto why = Missing({}); !why.empty()) GTEST_SKIP() << why;
  ASSERT_TRUE(Start()) << machine_->output();
  struct stat st {};
  ASSERT_EQ(stat(file().c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_size, 16384 * 4096);
  // Unaligned writes and reads (the frontend reads, patches and writes blocks).
  auto w = Shell("printf 'hello, shadow' | dd of=" + file() + " bs=1 seek=4093 conv=notrunc,fsync status=none");
  ASSERT_EQ(w.code, 0) << w.out;
  auto r = Shell("dd if=" + file() + " bs=1 skip=4093 count=13 status=none");
  EXPECT_EQ(r.out, "hello, shadow");
  auto grow = Shell("truncate -s 1G " + file());
  EXPECT_NE(grow.code, 0) << "a disk does not grow";
}

TEST_F(BlockFrontendTest, FileLeftMountedByAKilledRunIsTakenOverByTheNextRun) {
  if (auto why = Missing({}); !why.empty()) GTEST_SKIP() << why;
  ASSERT_TRUE(Start()) << machine_->output();
  machine_->Kill();  // its FUSE mount stays, answering ENOTCONN
  ASSERT_TRUE(Start()) << machine_->output();
  auto r = Shell("dd if=" + file() + " bs=4096 count=1 status=none | wc -c");
  EXPECT_EQ(r.out, "4096\n");
}

TEST_F(BlockFrontendTest, FioVerifiesRandomWritesWhileTheDriverIsKilled) {
  if (auto why = Missing({"fio"}); !why.empty()) GTEST_SKIP() << why;
  ASSERT_TRUE(Start()) << machine_->output();
  Crasher crasher(machine_->run_dir(), "disk0", {"sigkill", "segfault", "abort", "sigsegv"}, 300ms);
  // Random 4 KiB writes at depth 16 (O_DIRECT through FUSE), each block read
  // back and checked while the writing goes on (verify_backlog) and at the end.
  auto fio = Shell("timeout 120 fio --name=verify --filename=" + file() +
                   " --rw=randwrite --bs=4k --size=32m --ioengine=libaio --iodepth=16 --direct=1"
                   " --verify=crc32c --verify_backlog=256 --verify_fatal=1 --do_verify=1 --randrepeat=0"
                   " --verify_state_save=0 --output-format=terse --terse-version=3");
  const int injected = crasher.Stop();
  EXPECT_EQ(fio.code, 0) << fio.out;
  EXPECT_EQ(fio.out.find("verify:"), std::string::npos) << fio.out;
  EXPECT_EQ(fio.out.find("bad"), std::string::npos) << fio.out;
  EXPECT_GT(injected, 0);
  // Crashes happened while the programs ran, and each was recovered.
  EXPECT_TRUE(machine_->WaitForCount("\"kind\":\"recovered\"", 2, 5s)) << machine_->output();
}

TEST_F(BlockFrontendTest, Ext4SurvivesCrashesDuringMkfsUnpackAndSqlite) {
  if (auto why = Missing({"losetup", "mkfs.ext4", "e2fsck", "tar", "sqlite3"}); !why.empty()) GTEST_SKIP() << why;
  ASSERT_TRUE(Start()) << machine_->output();
  // The repository's own sources, as the tarball to unpack.
  const std::string tarball = (dir_ / "src.tar").string();
  auto tar = Shell("tar -C " + std::string(UMBRA_SOURCE_DIR) + " -cf " + tarball +
                   " cli control runtime shadows drivers faultinject proto docs");
  ASSERT_EQ(tar.code, 0) << tar.out;
  Crasher crasher(machine_->run_dir(), "disk0", {"sigkill", "segfault", "abort", "hang"}, 200ms);
  auto loop = Shell("losetup -f --show " + file());
  ASSERT_EQ(loop.code, 0) << loop.out;
  loop_ = loop.out.substr(0, loop.out.find('\n'));
  ASSERT_EQ(Shell("mkfs.ext4 -q -F " + loop_).code, 0);
  mount_ = (dir_ / "mnt").string();
  std::filesystem::create_directories(mount_);
  ASSERT_EQ(Shell("mount " + loop_ + " " + mount_).code, 0);
  auto unpack = Shell("tar -C " + mount_ + " -xf " + tarball + " && sync");
  ASSERT_EQ(unpack.code, 0) << unpack.out;
  // The storm: each transaction's row is printed after its COMMIT returned.
  const std::string db = mount_ + "/storm.db";
  std::string script = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;\n"
                       "CREATE TABLE t(i INTEGER PRIMARY KEY, v BLOB);\n";
  for (int i = 0; i < 400; ++i) {
    script += "BEGIN; INSERT INTO t VALUES(" + std::to_string(i) + ", randomblob(3000)); COMMIT; SELECT 'committed " +
              std::to_string(i) + "';\n";
  }
  script += "PRAGMA journal_mode=DELETE;\n";  // back out of WAL, so a read-only mount can open it
  std::ofstream(dir_ / "storm.sql") << script;
  auto storm = Shell("sqlite3 " + db + " < " + (dir_ / "storm.sql").string());
  EXPECT_EQ(storm.code, 0) << storm.out;
  const size_t committed = Count(storm.out, "committed ");
  EXPECT_EQ(committed, 400u) << storm.out;
  ASSERT_EQ(Shell("umount " + mount_).code, 0);
  const int injected = crasher.Stop();
  EXPECT_GT(injected, 0);
  // Clean, and holding exactly what was written.
  auto fsck = Shell("e2fsck -fn " + loop_);
  EXPECT_EQ(fsck.code, 0) << fsck.out;
  ASSERT_EQ(Shell("mount -o ro " + loop_ + " " + mount_).code, 0);
  auto compare = Shell("tar -C " + mount_ + " -df " + tarball);
  EXPECT_EQ(compare.code, 0) << compare.out;
  auto check = Shell("sqlite3 -readonly " + db + " 'PRAGMA integrity_check; SELECT count(*), min(i), max(i) FROM t;'");
  EXPECT_EQ(check.out, "ok\n" + std::to_string(committed) + "|0|" + std::to_string(committed - 1) + "\n");
  // Crashes happened while the programs ran, and each was recovered.
  EXPECT_TRUE(machine_->WaitForCount("\"kind\":\"recovered\"", 2, 5s)) << machine_->output();
}

}  // namespace
}  // namespace umbra::testing
