#pragma once
#include "actors/supervision/job_pool.hpp"

// The typed interface of the media workers (DESIGN.md §2): a job pool (wake it when a job was
// queued outside the webhook path, say by POST .../media/retry).
namespace wachat::actors {

using media_pool_actor = job_pool_actor;

}  // namespace wachat::actors
