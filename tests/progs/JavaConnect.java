// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
// JavaConnect NAME PORT: an unmodified-Java TCP client (java JavaConnect.java NAME PORT).
// Java resolves NAME with the C library's getaddrinfo() (AF_UNSPEC) and, with its default
// preferences (java.net.preferIPv6Addresses=false), connects an AF_INET6 socket to the
// IPv4 address, which it maps to ::ffff:a.b.c.d itself. Prints "connected ADDR" or
// "error EXCEPTION"; exits 0 either way.
import java.net.InetSocketAddress;
import java.net.Socket;

public class JavaConnect {
    public static void main(String[] args) throws Exception {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress(args[0], Integer.parseInt(args[1])), 5000);
            System.out.println("connected " + s.getInetAddress().getHostAddress());
        } catch (java.io.IOException e) {
            System.out.println("error " + e);
        }
    }
}
