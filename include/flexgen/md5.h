// MD5 digests (RFC 1321), used for dataset uuids: uuid = md5 hex of the question text.
#pragma once

#include <string>

namespace flexgen {

// Lower-case hex MD5 digest (32 characters) of the bytes of `data`.
std::string md5_hex(const std::string& data);

}  // namespace flexgen
