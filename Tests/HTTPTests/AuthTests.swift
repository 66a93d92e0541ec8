import XCTest
@testable import HTTP

final class AuthTests: XCTestCase {
    func testConstantTimeEquals() {
        XCTAssertTrue(HTTPAuth.constantTimeEquals("secret-token", "secret-token"))
        XCTAssertFalse(HTTPAuth.constantTimeEquals("secret-token", "secret-tokem"))
        XCTAssertFalse(HTTPAuth.constantTimeEquals("secret", "secret-token"))
        XCTAssertFalse(HTTPAuth.constantTimeEquals("", "x"))
        XCTAssertTrue(HTTPAuth.constantTimeEquals("", ""))
    }

    func testBearerToken() {
        func token(_ values: [String]) -> String? {
            HTTPAuth.bearerToken(from: HTTPRequest(method: "GET", target: "/",
                                                   headers: HTTPHeaders(values.map { ("Authorization", $0) })))
        }
        XCTAssertEqual(token(["Bearer abc.DEF-123_~+/=="]), "abc.DEF-123_~+/==")
        XCTAssertEqual(token(["bearer   tok"]), "tok")
        XCTAssertNil(token([]))
        XCTAssertNil(token(["Basic dXNlcjpwYXNz"]))
        XCTAssertNil(token(["Bearer"]))
        XCTAssertNil(token(["Bearer "]))
        XCTAssertNil(token(["Bearertok"]))
        XCTAssertNil(token(["Bearer a b"]))
        XCTAssertNil(token(["Bearer a=b"]))
        XCTAssertNil(token(["Bearer a", "Bearer b"]))
        let response = HTTPAuth.unauthorized()
        XCTAssertEqual(response.status, .unauthorized)
        XCTAssertEqual(response.headers["WWW-Authenticate"], "Bearer")
    }
}
