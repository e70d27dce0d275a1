#pragma once
#include <caf/allowed_unsafe_message_type.hpp>

#include "infra/graph_client.hpp"

// Graph's answers travel to the actor that asked (site actors, cloud senders) as messages.
// Local only: never serialized.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::infra::graph_response)
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wachat::domain::graph_error)
