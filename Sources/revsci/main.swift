print("revsci")
