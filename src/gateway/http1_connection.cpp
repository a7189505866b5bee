// Instantiations for plain TCP and TLS streams; the code is in http1_connection.hpp.
#include "http1_connection.hpp"

namespace kinlet::gateway::detail {

void StartHttp1(std::shared_ptr<ServerState> state, std::shared_ptr<Worker> worker,
                Tcp::socket socket, std::string initial) {
  Start1(std::move(state), std::move(worker), std::move(socket), std::move(initial));
}
void StartHttp1(std::shared_ptr<ServerState> state, std::shared_ptr<Worker> worker,
                TlsStream stream, std::string initial) {
  Start1(std::move(state), std::move(worker), std::move(stream), std::move(initial));
}

}  // namespace kinlet::gateway::detail
