"""resolvers/demo"""
