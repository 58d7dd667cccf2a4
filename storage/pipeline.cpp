#include "storage/pipeline.h"

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace tw::storage {

Status pipelined_rows(Stmt& stmt, int columns,
                      const std::function<bool(const std::string_view* fields)>& row) {
  const auto n = static_cast<std::size_t>(columns);
  struct Batch {
    std::string text;
    std::vector<std::uint32_t> ends;  // the end offset of each field, row after row
  };
  constexpr std::size_t kRows = 2048, kInFlight = 4;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Batch> full, empty(kInFlight);
  bool done = false;
  std::atomic<bool> stop{false};
  Status read_status = ok_status();
  std::thread reader([&] {
    Batch batch;
    {
      std::lock_guard lock(mu);
      batch = std::move(empty.front());
      empty.pop_front();
    }
    auto hand_over = [&](bool last) {
      std::unique_lock lock(mu);
      if (!batch.ends.empty()) full.push_back(std::move(batch));
      if (last) {
        done = true;
        cv.notify_all();
        return;
      }
      cv.notify_all();
      cv.wait(lock, [&] { return !empty.empty(); });
      batch = std::move(empty.front());
      empty.pop_front();
      batch.text.clear();
      batch.ends.clear();
    };
    while (!stop.load(std::memory_order_relaxed)) {
      auto r = stmt.step();
      if (!r.ok()) {
        std::lock_guard lock(mu);
        read_status = r.take_error();
        break;
      }
      if (!*r) break;
      for (int c = 0; c < columns; ++c) {
        batch.text.append(stmt.view(c));
        batch.ends.push_back(static_cast<std::uint32_t>(batch.text.size()));
      }
      if (batch.ends.size() >= kRows * n) hand_over(false);
    }
    hand_over(true);
  });
  std::vector<std::string_view> fields(n);
  bool go_on = true;
  while (go_on) {
    Batch batch;
    {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return !full.empty() || done; });
      if (full.empty()) break;
      batch = std::move(full.front());
      full.pop_front();
    }
    const std::string_view text(batch.text);
    std::uint32_t start = 0;
    for (std::size_t i = 0; go_on && i < batch.ends.size(); i += n) {
      for (std::size_t c = 0; c < n; ++c) {
        fields[c] = text.substr(start, batch.ends[i + c] - start);
        start = batch.ends[i + c];
      }
      go_on = row(fields.data());
    }
    std::lock_guard lock(mu);
    empty.push_back(std::move(batch));
    cv.notify_all();
  }
  if (!go_on) {
    stop = true;
    // Let the reader finish its batch: hand it empty batches until it is done.
    std::unique_lock lock(mu);
    while (!done) {
      while (!full.empty()) {
        empty.push_back(std::move(full.front()));
        full.pop_front();
      }
      cv.notify_all();
      cv.wait(lock, [&] { return !full.empty() || done; });
    }
  }
  reader.join();
  return read_status;
}

}  // namespace tw::storage
