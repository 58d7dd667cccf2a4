#include "policy/notices.h"

namespace tw::policy {

NoticeStep notice_step(std::span<const Duration> thresholds, Timestamp expires_at, Timestamp now) {
  NoticeStep out;
  const Duration left = expires_at - now;
  if (left <= Duration(0)) return out;
  for (Duration t : thresholds) {
    if (t >= left) {
      if (!out.current || t < *out.current) out.current = t;
    } else if (expires_at - t < out.next) {
      out.next = expires_at - t;  // the largest threshold still ahead is crossed first
    }
  }
  return out;
}

std::string threshold_label(Duration threshold) { return format_duration(threshold); }

}  // namespace tw::policy
