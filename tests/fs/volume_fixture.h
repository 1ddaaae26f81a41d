// The fixture of the fs::Volume tests: a volume over a real page store in a fresh temporary
// directory, with a test clock, closed and destroyed after each test.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <memory>
#include <string>

#include "fs/volume.h"
#include "kv/store.h"

namespace fs {

class VolumeFixture : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/kvfs-fs-test-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    options_.chunk_size = 4096;  // small chunks exercise multi-chunk paths cheaply
    options_.clock = [this] { return now_; };
    options_.commit_interval_ns = 0;  // buffers stay until a test commits them
    Configure(&options_);
    Reopen();
  }
  void TearDown() override {
    if (vol_) {
      ASSERT_TRUE(vol_->Close().ok());
      vol_.reset();
    }
    ASSERT_TRUE(kv::DestroyPageStore(dir_).ok());
    rmdir(dir_.c_str());
  }
  // A test's own options, before the first open.
  virtual void Configure(VolumeOptions* /*options*/) {}

  // Closes the volume (and its store) and opens it again with options_.
  void Reopen() {
    if (vol_) {
      ASSERT_TRUE(vol_->Close().ok());
      vol_.reset();
    }
    Errno err = Volume::OpenAt(dir_, options_, &vol_);
    ASSERT_TRUE(err.ok()) << err.ToString();
  }

  std::string dir_;
  VolumeOptions options_;
  int64_t now_ = 1'700'000'000'000'000'000;
  Caller caller_{1000, 1000};
  std::unique_ptr<Volume> vol_;
};

}  // namespace fs
