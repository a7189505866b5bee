// Instantiations for plain TCP and TLS streams; the code is in http2_connection.hpp.
#include "http2_connection.hpp"

namespace kinlet::gateway::detail {

void StartHttp2(std::shared_ptr<ServerState> state, std::shared_ptr<Worker> worker,
                Tcp::socket socket, std::string initial) {
  Start2(std::move(state), std::move(worker), std::move(socket), std::move(initial));
}
void StartHttp2(std::shared_ptr<ServerState> state, std::shared_ptr<Worker> worker,
                TlsStream stream, std::string initial) {
  Start2(std::move(state), std::move(worker), std::move(stream), std::move(initial));
}

}  // namespace kinlet::gateway::detail
